//! The catalog: events, performances, seat maps and products.

pub mod money;
