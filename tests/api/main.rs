//! The one integration test binary: every test drives the service over HTTP.

mod cli;
mod cookies;
mod health;
mod helpers;
mod login;
mod mail;
mod rate_limits;
mod signup;
mod tokens;
mod ugly_inputs;
mod verify;
