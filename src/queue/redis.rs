//! `RedisRoom`: the waiting room in Redis, shared by every instance. Each hot call is one
//! round trip (one Lua script from `lua/`, run by EVALSHA with automatic loading), and every
//! key of an event's scripts carries the `{ev:ID}` hash tag so the event lives on one shard
//! of a Redis Cluster.

use std::{future::Future, time::Duration};

use async_trait::async_trait;
use redis::{RedisResult, Script, ScriptInvocation};

use super::{
    pace,
    room::{Joined, Lane, RoomError, RoomRules, RoomStats, Standing, Tick, WaitingRoom},
};
use crate::infra::redis::RedisHandle;

/// Longest wait for one call. While Redis is away the connection manager keeps retrying for
/// many seconds; a waiting buyer should get a quick 503 instead of a hung request.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// The compiled scripts (hashed once; loaded into Redis on first use and after a restart).
struct Scripts {
    join: Script,
    status: Script,
    leave: Script,
    release: Script,
    tick: Script,
    stats: Script,
    lead: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            join: script!("join.lua"),
            status: script!("status.lua"),
            leave: script!("leave.lua"),
            release: script!("release.lua"),
            tick: script!("tick.lua"),
            stats: script!("stats.lua"),
            lead: Script::new(include_str!("lua/lead.lua")),
        }
    }
}

/// What `join` and `status` scripts answer: kind (`W`, `A`, `LIMIT` or empty), lane tag,
/// score or slot expiry as Redis prints it, 0-based rank (-1: none) and whether it is new.
type Place = (String, String, String, i64, i64);

/// The waiting room kept in Redis.
pub struct RedisRoom {
    redis: RedisHandle,
    scripts: Scripts,
}

impl RedisRoom {
    /// A room over this connection and its key prefix.
    pub fn new(redis: RedisHandle) -> Self {
        Self {
            redis,
            scripts: Scripts::new(),
        }
    }

    /// The event's key prefix: `<prefix>q:{ev:ID}:`.
    fn base(&self, event_id: &str) -> String {
        format!("{}q:{{ev:{event_id}}}:", self.redis.prefix)
    }

    /// An invocation with the six keys every event script shares (see `lua/common.lua`).
    fn with_keys<'a>(&self, script: &'a Script, event_id: &str) -> ScriptInvocation<'a> {
        let base = self.base(event_id);
        let mut call = script.prepare_invoke();
        for suffix in ["w:v", "w:n", "hb", "a", "al", "st"] {
            call.key(format!("{base}{suffix}"));
        }
        call
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        call: &ScriptInvocation<'_>,
    ) -> Result<T, RoomError> {
        let mut conn = self.redis.conn.clone();
        let started = std::time::Instant::now();
        let result = bounded(call.invoke_async(&mut conn)).await;
        metrics::histogram!("boxoffice_redis_call_seconds").record(started.elapsed().as_secs_f64());
        result
    }
}

/// One round trip, bounded by `CALL_TIMEOUT`, with Redis failures as `Unavailable`.
async fn bounded<T>(call: impl Future<Output = RedisResult<T>>) -> Result<T, RoomError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(answer) => answer.map_err(|e| RoomError::Unavailable(e.to_string())),
        Err(_) => Err(RoomError::Unavailable(
            "no answer from Redis in time".into(),
        )),
    }
}

fn lane_of(tag: &str) -> Lane {
    if tag == "v" { Lane::Vip } else { Lane::Normal }
}

/// Scores and expiries come back as Redis prints doubles; every one of ours is an integer
/// below 2^53, so the double is exact.
fn number(text: &str) -> Result<f64, RoomError> {
    text.parse::<f64>()
        .map_err(|_| RoomError::Unavailable(format!("unexpected number from Redis: {text:?}")))
}

fn standing(place: &Place) -> Result<Option<Standing>, RoomError> {
    let (kind, lane, value, rank, _) = place;
    Ok(match kind.as_str() {
        "W" => Some(Standing::Waiting {
            lane: lane_of(lane),
            position: u64::try_from(*rank).ok().map(|rank| rank + 1),
            score: number(value)? as u64,
        }),
        "A" => Some(Standing::Admitted {
            lane: lane_of(lane),
            expires_at_ms: number(value)? as i64,
        }),
        _ => None,
    })
}

fn head(text: &str) -> Result<Option<u64>, RoomError> {
    if text.is_empty() {
        Ok(None)
    } else {
        number(text).map(|score| Some(score as u64))
    }
}

#[async_trait]
impl WaitingRoom for RedisRoom {
    async fn join(
        &self,
        event_id: &str,
        user_id: &str,
        lane: Lane,
        ip: &str,
        rules: &RoomRules,
        now_ms: i64,
        random: u64,
    ) -> Result<Joined, RoomError> {
        let mut call = self.with_keys(&self.scripts.join, event_id);
        call.key(format!("{}ip:{ip}", self.base(event_id)))
            .arg(user_id)
            .arg(lane.tag())
            .arg(now_ms)
            .arg(random & (super::room::OPEN_SCORE_BASE - 1))
            .arg(rules.sale_opens_at_ms)
            .arg(rules.max_joins_per_ip.map_or(-1, i64::from))
            .arg(pace::JOIN_COUNTER_TTL_MS);
        let place: Place = self.run(&call).await?;
        if place.0 == "LIMIT" {
            return Err(RoomError::TooManyJoins);
        }
        let standing =
            standing(&place)?.ok_or_else(|| RoomError::Unavailable("join left no place".into()))?;
        Ok(Joined {
            standing,
            new: place.4 == 1,
        })
    }

    async fn status(
        &self,
        event_id: &str,
        user_id: &str,
        rules: &RoomRules,
        now_ms: i64,
    ) -> Result<Option<Standing>, RoomError> {
        let mut call = self.with_keys(&self.scripts.status, event_id);
        call.arg(user_id)
            .arg(now_ms)
            .arg(rules.sale_opens_at_ms)
            .arg(rules.heartbeat_timeout_ms / 3);
        let place: Place = self.run(&call).await?;
        standing(&place)
    }

    async fn leave(&self, event_id: &str, user_id: &str) -> Result<bool, RoomError> {
        let mut call = self.with_keys(&self.scripts.leave, event_id);
        call.arg(user_id);
        let gone: i64 = self.run(&call).await?;
        Ok(gone == 1)
    }

    async fn heartbeat(
        &self,
        event_id: &str,
        user_ids: &[String],
        now_ms: i64,
    ) -> Result<(), RoomError> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let key = format!("{}hb", self.base(event_id));
        // XX: only waiters have a heartbeat; admitted or dropped users must not get one back.
        let mut pipe = redis::pipe();
        for batch in user_ids.chunks(1000) {
            let cmd = pipe.cmd("ZADD").arg(&key).arg("XX");
            for user in batch {
                cmd.arg(now_ms).arg(user);
            }
            cmd.ignore();
        }
        let mut conn = self.redis.conn.clone();
        bounded(pipe.query_async::<()>(&mut conn)).await
    }

    async fn tick(
        &self,
        event_id: &str,
        rules: &RoomRules,
        now_ms: i64,
    ) -> Result<Tick, RoomError> {
        let mut call = self.with_keys(&self.scripts.tick, event_id);
        call.arg(now_ms)
            .arg(rules.sale_opens_at_ms)
            .arg(u8::from(rules.paused))
            .arg(rules.admit_per_second)
            .arg(rules.capacity)
            // Display prints the shortest string that parses back to the same double.
            .arg(rules.vip_share.to_string())
            .arg(rules.admission_ttl_ms)
            .arg(rules.heartbeat_timeout_ms)
            .arg(pace::SWEEP_LIMIT);
        type Answer = (
            Vec<String>,
            Vec<String>,
            Vec<String>,
            String,
            u64,
            String,
            u64,
            u64,
            u64,
        );
        let (
            expired,
            abandoned,
            admitted,
            vip_head,
            vip_len,
            normal_head,
            normal_len,
            active,
            total,
        ): Answer = self.run(&call).await?;
        let expires_at_ms = now_ms + rules.admission_ttl_ms;
        Ok(Tick {
            admitted: admitted
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), lane_of(&pair[1]), expires_at_ms))
                .collect(),
            abandoned,
            expired,
            heads: vec![
                (Lane::Vip, head(&vip_head)?, vip_len),
                (Lane::Normal, head(&normal_head)?, normal_len),
            ],
            active,
            admitted_total: total,
        })
    }

    async fn admission(
        &self,
        event_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, RoomError> {
        let mut conn = self.redis.conn.clone();
        let expiry: Option<String> = bounded(
            redis::cmd("ZSCORE")
                .arg(format!("{}a", self.base(event_id)))
                .arg(user_id)
                .query_async(&mut conn),
        )
        .await?;
        match expiry {
            Some(text) => {
                let expires_at_ms = number(&text)? as i64;
                Ok((expires_at_ms > now_ms).then_some(expires_at_ms))
            }
            None => Ok(None),
        }
    }

    async fn release(&self, event_id: &str, user_id: &str) -> Result<bool, RoomError> {
        let mut call = self.with_keys(&self.scripts.release, event_id);
        call.arg(user_id);
        let held: i64 = self.run(&call).await?;
        Ok(held == 1)
    }

    async fn stats(&self, event_id: &str, now_ms: i64) -> Result<RoomStats, RoomError> {
        let mut call = self.with_keys(&self.scripts.stats, event_id);
        call.arg(now_ms);
        let (vip, normal, active, admitted_total, abandoned_total, left_total): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
        ) = self.run(&call).await?;
        Ok(RoomStats {
            waiting: vec![(Lane::Vip, vip), (Lane::Normal, normal)],
            active,
            admitted_total,
            abandoned_total,
            left_total,
        })
    }

    async fn lead(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, RoomError> {
        let mut call = self.scripts.lead.prepare_invoke();
        call.key(format!("{}q:leader", self.redis.prefix))
            .arg(holder)
            .arg(now_ms)
            .arg(ttl_ms);
        let leads: i64 = self.run(&call).await?;
        Ok(leads == 1)
    }
}
