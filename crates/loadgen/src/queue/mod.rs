//! The waiting-room scenarios (issue 7): `queue-burst` (joins by distinct users, then status
//! polls, against Redis's own ZADD rate, and Redis memory with a million waiters) and
//! `ws-fanout` (one admission wave pushed to many WebSockets). Both set up their own event
//! and queue as the organizer, then drive the buyer API.

pub mod burst;
pub mod fanout;

use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::http;
use crate::organizer;
use crate::scenario::{Scenario, Status, Step};

/// The longest heartbeat timeout the API allows: nobody is dropped during a run.
pub const HEARTBEAT_TIMEOUT_SECONDS: u32 = 3600;

/// A published event on sale now, with its waiting room on.
pub async fn event_with_queue(
    client: &Client,
    target: &str,
    token: &str,
    title: &str,
    capacity: u32,
    admit_per_second: u32,
) -> Result<String> {
    let event = organizer::published_event(client, target, token, title, 1_000, json!({})).await?;
    put_queue(client, target, token, &event.id, capacity, admit_per_second).await?;
    Ok(event.id)
}

/// `PUT /events/{id}/queue`.
pub async fn put_queue(
    client: &Client,
    target: &str,
    token: &str,
    event_id: &str,
    capacity: u32,
    admit_per_second: u32,
) -> Result<Value> {
    organizer::ok_json(
        client
            .put(http::endpoint(
                target,
                &format!("/events/{event_id}/queue"),
            )?)
            .bearer_auth(token)
            .json(&json!({
                "enabled": true,
                "capacity": capacity,
                "admit_per_second": admit_per_second,
                "heartbeat_timeout_seconds": HEARTBEAT_TIMEOUT_SECONDS,
            }))
            .send()
            .await,
        StatusCode::OK,
        "PUT /events/{id}/queue",
    )
    .await
}

/// `POST /events/{id}/queue/pause` or `/resume`.
pub async fn set_paused(
    client: &Client,
    target: &str,
    token: &str,
    event_id: &str,
    paused: bool,
) -> Result<()> {
    let action = if paused { "pause" } else { "resume" };
    organizer::ok_json(
        client
            .post(http::endpoint(
                target,
                &format!("/events/{event_id}/queue/{action}"),
            )?)
            .bearer_auth(token)
            .send()
            .await,
        StatusCode::OK,
        "POST /events/{id}/queue/pause|resume",
    )
    .await
    .map(|_| ())
}

/// Job `i` of a one-pass phase: buyer `i` joins with their own access token and keeps the
/// `queue_token` the answer carries.
pub struct Join {
    client: Client,
    targets: Vec<String>,
    event_id: String,
    access_tokens: Vec<String>,
    queue_tokens: Mutex<Vec<Option<String>>>,
}

/// One buyer about to join.
pub struct Joiner {
    index: usize,
    url: reqwest::Url,
}

impl Join {
    /// Buyers `0..access_tokens.len()`, spread round-robin over `targets`.
    pub fn new(
        client: Client,
        targets: &[String],
        event_id: &str,
        access_tokens: Vec<String>,
    ) -> Self {
        let n = access_tokens.len();
        Self {
            client,
            targets: targets.to_vec(),
            event_id: event_id.to_owned(),
            access_tokens,
            queue_tokens: Mutex::new(vec![None; n]),
        }
    }

    /// The queue tokens, in buyer order (`None` where the join failed).
    pub fn queue_tokens(&self) -> Vec<Option<String>> {
        std::mem::take(
            &mut *self
                .queue_tokens
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

impl Scenario for Join {
    type User = Joiner;

    fn name(&self) -> &'static str {
        "join"
    }

    fn user(&self, index: usize) -> Result<Joiner> {
        let target = &self.targets[index % self.targets.len()];
        Ok(Joiner {
            index,
            url: http::endpoint(target, "/queue/join")?,
        })
    }

    async fn step(&self, joiner: &mut Joiner) -> Step {
        let sent = self
            .client
            .post(joiner.url.clone())
            .bearer_auth(&self.access_tokens[joiner.index])
            .json(&json!({"event_id": self.event_id}))
            .send()
            .await;
        let outcome = async {
            let response = sent?;
            let status = response.status();
            let body = response.bytes().await?;
            if status != StatusCode::OK {
                return Ok(Status::Unexpected(label(status, &body)));
            }
            let place: Value = serde_json::from_slice(&body).context("join answer")?;
            let token = place["queue_token"]
                .as_str()
                .context("join answer without queue_token")?;
            self.queue_tokens
                .lock()
                .unwrap_or_else(PoisonError::into_inner)[joiner.index] = Some(token.to_owned());
            Ok(Status::Ok)
        }
        .await;
        ("POST /queue/join", outcome)
    }
}

/// `409 queue_not_open`-style label from a problem body.
pub fn label(status: StatusCode, body: &[u8]) -> String {
    let code = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned));
    match code {
        Some(code) => format!("{} {code}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Removes a run's queue from the server's Redis without blocking it (UNLINK frees in the
/// background), so runs do not pile up in a shared Redis.
pub async fn drop_queue(handle: &boxoffice::infra::redis::RedisHandle, event_id: &str) {
    let base = format!("{}q:{{ev:{event_id}}}:", handle.prefix);
    let mut conn = handle.conn.clone();
    let mut unlink = redis::cmd("UNLINK");
    for suffix in ["w:v", "w:n", "hb", "a", "al", "st"] {
        unlink.arg(format!("{base}{suffix}"));
    }
    let _: redis::RedisResult<i64> = unlink.query_async(&mut conn).await;
}

/// The server's resident memory in MiB, from `/proc/<pid>/status`.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
