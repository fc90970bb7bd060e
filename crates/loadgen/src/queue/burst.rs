//! `queue-burst`: distinct buyers join one event's queue as fast as `--users` workers go
//! (each exactly once), then poll `GET /queue/status` with their `X-Queue-Token`; then the line
//! is filled to `--hold-waiters` through the server's own Redis backend, Redis's memory is read,
//! and the status polls are measured again with the line that long.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use boxoffice::infra::redis::RedisHandle;
use boxoffice::queue::room::{Lane, RoomRules};
use boxoffice::queue::{RedisRoom, WaitingRoom};
use reqwest::{Client, StatusCode, Url};
use tokio::task::JoinSet;

use super::{HEARTBEAT_TIMEOUT_SECONDS, Join, drop_queue, event_with_queue, label};
use crate::cli::Cli;
use crate::http;
use crate::organizer;
use crate::report::{PhaseReport, RunOutput};
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Status, Step};
use crate::tokens;

/// Runs the scenario (see the module documentation).
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let Some(first) = cli.targets.first() else {
        bail!("queue-burst needs --target URL of a running boxoffice (on Redis)");
    };
    let path = cli.tokens.as_deref().context(
        "queue-burst needs --tokens FILE of distinct buyers (`boxoffice bench seed --users N --out FILE`)",
    )?;
    let lines = tokens::load(path)?;
    let buyers = (cli.buyers as usize).min(lines.len());
    let organizer_token =
        organizer::read_token(cli.organizer_token_file.as_deref(), "queue-burst")?;
    let client = http::client(config.users, config.timeout)?;
    // Capacity and rate of one: the line only grows during the run.
    let event_id = event_with_queue(
        &client,
        first,
        &organizer_token,
        "loadgen queue-burst",
        1,
        1,
    )
    .await?;
    eprintln!("queue-burst: event {event_id}");
    let mut output = RunOutput::default();

    let redis = match RedisHandle::connect(
        &boxoffice::config::ServiceUrl::parse(&cli.redis_url).map_err(anyhow::Error::msg)?,
        &cli.redis_prefix,
    )
    .await
    {
        Ok(handle) => Some(handle),
        Err(error) => {
            output.notes.push(format!("Redis not measured: {error:#}"));
            None
        }
    };
    let memory_before = match &redis {
        Some(handle) => used_memory(handle).await.ok(),
        None => None,
    };

    let access_tokens = lines
        .into_iter()
        .take(buyers)
        .map(|l| l.access_token)
        .collect();
    let join = Arc::new(Join::new(
        client.clone(),
        &cli.targets,
        &event_id,
        access_tokens,
    ));
    let (result, elapsed) =
        runner::run_each(Arc::clone(&join), buyers, config.users, config.timeout).await?;
    let joined = result.ops.get("POST /queue/join").map_or(0, |s| s.ok);
    let joins_per_s = joined as f64 / elapsed.as_secs_f64();
    output
        .phases
        .push(PhaseReport::measured("join", result, elapsed));
    output.notes.push(format!(
        "join: {buyers} distinct buyers (own access token each, so every join also verifies a new JWT), each once, over {} workers: {joined} joined in {:.3} s = {joins_per_s:.0} joins/s",
        config.users,
        elapsed.as_secs_f64()
    ));
    if let Some(zadd) = cli.zadd_ceiling {
        output.notes.push(format!(
            "ceiling: redis-benchmark -t zadd in the same run: {zadd:.0} ZADD/s; joins/s are {:.1} % of it (goal >= 20 %)",
            100.0 * joins_per_s / zadd
        ));
    }

    let queue_tokens: Vec<String> = join.queue_tokens().into_iter().flatten().collect();
    if queue_tokens.is_empty() {
        output.failure = Some("no buyer joined: nothing to poll".to_owned());
        return Ok(output);
    }
    let poll = || {
        Poll::new(
            client.clone(),
            &cli.targets,
            &event_id,
            queue_tokens.clone(),
        )
    };
    output
        .phases
        .push(runner::measure(poll()?.named("status"), config).await);

    if let (Some(handle), true) = (&redis, cli.hold_waiters > 0) {
        let target = cli.hold_waiters as usize;
        let started = Instant::now();
        let filled = fill(
            handle,
            &event_id,
            target.saturating_sub(joined as usize),
            cli.users,
        )
        .await?;
        let fill_s = started.elapsed().as_secs_f64();
        let after = used_memory(handle).await?;
        let waiting = joined as usize + filled;
        output.notes.push(format!(
            "held: {waiting} waiting (the {joined} who joined over HTTP plus {filled} added through the server's RedisRoom::join, {:.0}/s over one connection), heartbeat timeout {HEARTBEAT_TIMEOUT_SECONDS} s, so nobody was dropped",
            filled as f64 / fill_s
        ));
        if let Some(before) = memory_before {
            let grown = after.saturating_sub(before);
            output.notes.push(format!(
                "Redis used_memory {:.1} MiB before the run, {:.1} MiB holding them: {:.1} MiB for {waiting} waiters = {:.0} bytes each (a place in a lane and a heartbeat entry)",
                mib(before),
                mib(after),
                mib(grown),
                grown as f64 / waiting as f64
            ));
        }
        output
            .phases
            .push(runner::measure(poll()?.named("status_with_line_held"), config).await);
    }
    if let (Some(handle), false) = (&redis, cli.keep_waiters) {
        drop_queue(handle, &event_id).await;
    }
    Ok(output)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `used_memory` from `INFO memory`.
async fn used_memory(handle: &RedisHandle) -> Result<u64> {
    let mut conn = handle.conn.clone();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no used_memory in INFO memory")
}

/// Adds `count` synthetic waiters with the server's own join script, `workers` at a time.
async fn fill(handle: &RedisHandle, event_id: &str, count: usize, workers: u32) -> Result<usize> {
    let room = Arc::new(RedisRoom::new(handle.clone()));
    let rules = Arc::new(RoomRules {
        capacity: 1,
        admit_per_second: 1,
        admission_ttl_ms: 600_000,
        // The sale is open: first come, first served, as the server's joins are.
        sale_opens_at_ms: 0,
        vip_share: 0.0,
        heartbeat_timeout_ms: i64::from(HEARTBEAT_TIMEOUT_SECONDS) * 1000,
        max_joins_per_ip: None,
        paused: false,
    });
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (room, rules, next, event_id) = (
            room.clone(),
            rules.clone(),
            next.clone(),
            event_id.to_owned(),
        );
        tasks.spawn(async move {
            let mut added = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<usize, anyhow::Error>(added);
                }
                let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
                room.join(
                    &event_id,
                    &synthetic_user(i),
                    Lane::Normal,
                    "10.0.0.1",
                    &rules,
                    now_ms as i64,
                    0,
                )
                .await
                .map_err(|e| anyhow::anyhow!("filling the line: {e}"))?;
                added += 1;
            }
        });
    }
    let mut added = 0;
    while let Some(done) = tasks.join_next().await {
        added += done??;
    }
    Ok(added)
}

/// A user id as long as the real ones (UUIDs), so the memory per waiter is the real one.
fn synthetic_user(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012}")
}

/// `GET /queue/status?event_id=` with `X-Queue-Token`, each virtual user cycling through its
/// share of the joined buyers.
struct Poll {
    name: &'static str,
    client: Client,
    urls: Vec<Url>,
    queue_tokens: Vec<String>,
}

/// A poller's place in the token list.
struct Poller {
    url: Url,
    next: usize,
}

impl Poll {
    fn new(
        client: Client,
        targets: &[String],
        event_id: &str,
        queue_tokens: Vec<String>,
    ) -> Result<Self> {
        let urls = targets
            .iter()
            .map(|t| http::endpoint(t, &format!("/queue/status?event_id={event_id}")))
            .collect::<Result<_>>()?;
        Ok(Self {
            name: "status",
            client,
            urls,
            queue_tokens,
        })
    }

    fn named(self, name: &'static str) -> Self {
        Self { name, ..self }
    }
}

impl Scenario for Poll {
    type User = Poller;

    fn name(&self) -> &'static str {
        self.name
    }

    fn user(&self, index: usize) -> Result<Poller> {
        Ok(Poller {
            url: self.urls[index % self.urls.len()].clone(),
            next: index.wrapping_mul(7919),
        })
    }

    async fn step(&self, poller: &mut Poller) -> Step {
        poller.next = (poller.next + 1) % self.queue_tokens.len();
        let sent = self
            .client
            .get(poller.url.clone())
            .header("x-queue-token", &self.queue_tokens[poller.next])
            .send()
            .await;
        let outcome = async {
            let response = sent?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok(if status == StatusCode::OK {
                Status::Ok
            } else {
                Status::Unexpected(label(status, &body))
            })
        }
        .await;
        ("GET /queue/status", outcome)
    }
}
