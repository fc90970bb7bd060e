//! The one integration test binary: every test drives the service over HTTP.

mod cli;
mod cookies;
mod deletion;
mod health;
mod helpers;
mod lockout;
mod login;
mod mail;
mod password_reset;
mod seat_maps;
mod sessions;
mod signup;
mod tokens;
mod ugly_inputs;
mod verify;
