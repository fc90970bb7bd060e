//! The one integration test binary: every test drives the service over HTTP.

mod admin_users;
mod cli;
mod cookies;
mod health;
mod helpers;
mod ip_blocks;
mod login;
mod mail;
mod security_events;
mod signup;
mod tokens;
mod ugly_inputs;
mod verify;
