//! The one integration test binary: every test drives the service over HTTP.

mod admin_users;
mod cli;
mod cookies;
mod deletion;
mod events;
mod health;
mod helpers;
mod ip_blocks;
mod lockout;
mod login;
mod mail;
mod orders;
mod password_reset;
mod products;
mod rate_limits;
mod seat_maps;
mod security_events;
mod sessions;
mod shop;
mod signup;
mod tokens;
mod ugly_inputs;
mod verify;
