//! What scenarios set up as an organizer before they measure: the token, a published event,
//! its products.

use std::path::Path;

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::http;

/// Reads an organizer's access token from the file given with `--organizer-token-file`
/// (a file, so the token stays out of the report's command line).
pub fn read_token(path: Option<&Path>, scenario: &str) -> Result<String> {
    let path = path.with_context(|| {
        format!(
            "{scenario} needs --organizer-token-file FILE: create an organizer with `boxoffice user create --role organizer …`, sign in, and save its access_token"
        )
    })?;
    let token =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(token.trim().to_owned())
}

/// A published event made for a run.
#[derive(Debug, Clone)]
pub struct Event {
    /// Event id.
    pub id: String,
    /// Its first (and only) performance.
    pub performance_id: String,
}

/// Creates an event starting in 30 days with `total_tickets` capacity (plus the fields in
/// `extra`, e.g. `order_hold_seconds`) and publishes it; sales open at once.
pub async fn published_event(
    client: &Client,
    target: &str,
    token: &str,
    title: &str,
    total_tickets: u32,
    extra: Value,
) -> Result<Event> {
    let start = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let start = start
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting start_at")?;
    let mut body = json!({"title": title, "start_at": start, "total_tickets": total_tickets});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let event = ok_json(
        client
            .post(http::endpoint(target, "/events")?)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await,
        StatusCode::CREATED,
        "POST /events",
    )
    .await?;
    let id = event["id"].as_str().context("event id")?.to_owned();
    let performance_id = event["performances"][0]["id"]
        .as_str()
        .context("performance id")?
        .to_owned();
    ok_json(
        client
            .patch(http::endpoint(target, &format!("/events/{id}"))?)
            .bearer_auth(token)
            .json(&json!({"status": "PUBLISHED"}))
            .send()
            .await,
        StatusCode::OK,
        "PATCH /events/{id}",
    )
    .await?;
    Ok(Event { id, performance_id })
}

/// Creates a product (`POST /products`) and returns it as the API shows it.
pub async fn product(client: &Client, target: &str, token: &str, body: &Value) -> Result<Value> {
    ok_json(
        client
            .post(http::endpoint(target, "/products")?)
            .bearer_auth(token)
            .json(body)
            .send()
            .await,
        StatusCode::CREATED,
        "POST /products",
    )
    .await
}

/// The body of an answer with the expected status, as JSON.
pub async fn ok_json(
    response: reqwest::Result<reqwest::Response>,
    expected: StatusCode,
    what: &str,
) -> Result<Value> {
    let response = response.with_context(|| format!("{what}: no answer"))?;
    let status = response.status();
    let text = response.text().await.context("reading the body")?;
    if status != expected {
        bail!("{what}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON"))
}
