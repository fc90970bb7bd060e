//! The waiting room: a fair queue per event with a VIP lane, live positions over WebSocket,
//! abandonment detection and admission by capacity and rate, enforced at checkout.

pub mod room;
