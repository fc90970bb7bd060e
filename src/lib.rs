//! boxoffice: a ticket, merchandise and package reservation service.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod infra;
pub mod openapi;
pub mod orders;
pub mod queue;
pub mod security;
pub mod web;

pub use app::{AppState, Application, BuildOptions};
pub use config::Config;
pub use error::{AppError, AppResult};
