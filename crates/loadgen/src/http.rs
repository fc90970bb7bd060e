//! HTTP client and response checks shared by the HTTP scenarios.

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::{Client, Response, StatusCode, Url};

use crate::scenario::Status;

/// A client sized for `users` concurrent connections per host.
pub fn client(users: u32, timeout: Duration) -> Result<Client> {
    Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(users as usize)
        // Targets are on this machine; an inherited HTTP_PROXY must not reroute them.
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

/// `base` with `path` appended, keeping any path prefix the base URL has.
pub fn endpoint(base: &str, path: &str) -> Result<Url> {
    let joined = format!("{}{path}", base.trim_end_matches('/'));
    Url::parse(&joined).with_context(|| format!("invalid target URL {base:?}"))
}

/// Reads the whole body (so the connection is reusable and the time is complete) and checks the status.
pub async fn expect(response: reqwest::Result<Response>, expected: StatusCode) -> Result<Status> {
    let response = response?;
    let status = response.status();
    response.bytes().await?;
    Ok(status_check(status, expected))
}

/// `Ok` when `status` is the expected one, otherwise labelled with its code.
pub fn status_check(status: StatusCode, expected: StatusCode) -> Status {
    if status == expected {
        Status::Ok
    } else {
        Status::Unexpected(status.as_u16().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_prefix_and_drops_double_slash() {
        let url = endpoint("http://127.0.0.1:8080/api/", "/auth/me").expect("valid");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/api/auth/me");
        assert!(endpoint("not a url", "/x").is_err());
    }
}
