//! `MemoryRoom`: the waiting room in process, the embedded default (one instance, no Redis).
//! It keeps the same structures as the Redis backend (a sorted line per lane, a heartbeat
//! index, admitted slots by expiry) so both behave the same under the conformance suite.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;

use super::{
    pace,
    ranked::RankedSet,
    room::{
        Joined, Lane, OPEN_SCORE_BASE, RoomError, RoomRules, RoomStats, Standing, Tick, WaitingRoom,
    },
};

/// Pre-queue draws are 52-bit, so they always sort before `OPEN_SCORE_BASE`.
const DRAW_MASK: u64 = OPEN_SCORE_BASE - 1;

/// One lane's line: `(score, user)`, ties broken by user id as a Redis sorted set does.
type Line = RankedSet<(u64, String)>;

/// One event's queue.
#[derive(Default)]
struct EventRoom {
    vip: Line,
    normal: Line,
    /// Waiting user → (lane, score).
    members: HashMap<String, (Lane, u64)>,
    /// Last `OPEN_SCORE_BASE` sequence handed out, per lane (VIP, normal).
    seq: [u64; 2],
    /// Waiting user → last seen, and the same ordered by time for the sweep.
    last_seen: HashMap<String, i64>,
    by_last_seen: BTreeSet<(i64, String)>,
    /// Admitted user → (lane, slot expiry), and the same ordered by expiry.
    admitted: HashMap<String, (Lane, i64)>,
    by_expiry: BTreeSet<(i64, String)>,
    /// Client IP → (new joins counted, counter expiry).
    joins_per_ip: HashMap<String, (u32, i64)>,
    credit: f64,
    last_tick_ms: Option<i64>,
    admitted_total: u64,
    abandoned_total: u64,
    left_total: u64,
}

impl EventRoom {
    fn line(&mut self, lane: Lane) -> &mut Line {
        match lane {
            Lane::Vip => &mut self.vip,
            Lane::Normal => &mut self.normal,
        }
    }

    fn line_ref(&self, lane: Lane) -> &Line {
        match lane {
            Lane::Vip => &self.vip,
            Lane::Normal => &self.normal,
        }
    }

    fn touch(&mut self, user: &str, now_ms: i64) {
        if let Some(old) = self.last_seen.insert(user.to_owned(), now_ms) {
            self.by_last_seen.remove(&(old, user.to_owned()));
        }
        self.by_last_seen.insert((now_ms, user.to_owned()));
    }

    fn forget_heartbeat(&mut self, user: &str) {
        if let Some(old) = self.last_seen.remove(user) {
            self.by_last_seen.remove(&(old, user.to_owned()));
        }
    }

    /// Takes `user` out of their lane; their lane and score if they were waiting.
    fn unqueue(&mut self, user: &str) -> Option<(Lane, u64)> {
        let (lane, score) = self.members.remove(user)?;
        self.line(lane).remove(&(score, user.to_owned()));
        self.forget_heartbeat(user);
        Some((lane, score))
    }

    fn end_slot(&mut self, user: &str) -> bool {
        match self.admitted.remove(user) {
            Some((_, expiry)) => {
                self.by_expiry.remove(&(expiry, user.to_owned()));
                true
            }
            None => false,
        }
    }

    fn waiting(&self, user: &str, rules: &RoomRules, now_ms: i64) -> Option<Standing> {
        let (lane, score) = *self.members.get(user)?;
        let position = if now_ms < rules.sale_opens_at_ms {
            None
        } else {
            self.line_ref(lane)
                .rank(&(score, user.to_owned()))
                .map(|rank| rank as u64 + 1)
        };
        Some(Standing::Waiting {
            lane,
            position,
            score,
        })
    }

    fn slot(&self, user: &str, now_ms: i64) -> Option<Standing> {
        match self.admitted.get(user) {
            Some(&(lane, expires_at_ms)) if expires_at_ms > now_ms => Some(Standing::Admitted {
                lane,
                expires_at_ms,
            }),
            _ => None,
        }
    }

    /// Counts a new join against `ip`; false if the address used up its joins.
    fn count_join(&mut self, ip: &str, limit: Option<u32>, now_ms: i64) -> bool {
        let Some(limit) = limit else {
            return true;
        };
        let counter = self
            .joins_per_ip
            .entry(ip.to_owned())
            .or_insert((0, now_ms + pace::JOIN_COUNTER_TTL_MS));
        if counter.1 <= now_ms {
            *counter = (0, now_ms + pace::JOIN_COUNTER_TTL_MS);
        }
        if counter.0 >= limit {
            return false;
        }
        counter.0 += 1;
        true
    }

    /// Unexpired slots: all of them minus the few that ran out and were not swept yet.
    fn active(&self, now_ms: i64) -> u64 {
        let ran_out = self.by_expiry.range(..(now_ms + 1, String::new())).count();
        (self.admitted.len() - ran_out) as u64
    }

    fn heads(&self) -> Vec<(Lane, Option<u64>, u64)> {
        Lane::ALL
            .iter()
            .map(|&lane| {
                let line = self.line_ref(lane);
                (lane, line.first().map(|(s, _)| *s), line.len() as u64)
            })
            .collect()
    }
}

/// The waiting room held in this process's memory.
#[derive(Default)]
pub struct MemoryRoom {
    events: Mutex<HashMap<String, Arc<Mutex<EventRoom>>>>,
    /// Ticker lease: holder and expiry.
    leader: Mutex<Option<(String, i64)>>,
}

impl MemoryRoom {
    /// An empty room.
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&self, event_id: &str) -> Arc<Mutex<EventRoom>> {
        let mut events = lock(&self.events);
        events.entry(event_id.to_owned()).or_default().clone()
    }
}

/// A poisoned lock only means another call panicked mid-way; the maps are still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl WaitingRoom for MemoryRoom {
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
        let event = self.event(event_id);
        let mut room = lock(&event);
        if let Some(standing) = room.slot(user_id, now_ms) {
            return Ok(Joined {
                standing,
                new: false,
            });
        }
        if room.members.contains_key(user_id) {
            room.touch(user_id, now_ms);
            let standing = room.waiting(user_id, rules, now_ms);
            return standing
                .map(|standing| Joined {
                    standing,
                    new: false,
                })
                .ok_or_else(|| RoomError::Unavailable("member without a place".into()));
        }
        if !room.count_join(ip, rules.max_joins_per_ip, now_ms) {
            return Err(RoomError::TooManyJoins);
        }
        // A slot that ran out is over: the user starts again at the back.
        room.end_slot(user_id);
        let score = if now_ms < rules.sale_opens_at_ms {
            random & DRAW_MASK
        } else {
            let seq = &mut room.seq[usize::from(lane == Lane::Normal)];
            *seq += 1;
            OPEN_SCORE_BASE + *seq
        };
        room.line(lane).insert((score, user_id.to_owned()));
        room.members.insert(user_id.to_owned(), (lane, score));
        room.touch(user_id, now_ms);
        let standing = room
            .waiting(user_id, rules, now_ms)
            .ok_or_else(|| RoomError::Unavailable("member without a place".into()))?;
        Ok(Joined {
            standing,
            new: true,
        })
    }

    async fn status(
        &self,
        event_id: &str,
        user_id: &str,
        rules: &RoomRules,
        now_ms: i64,
    ) -> Result<Option<Standing>, RoomError> {
        let event = self.event(event_id);
        let mut room = lock(&event);
        if let Some(standing) = room.slot(user_id, now_ms) {
            return Ok(Some(standing));
        }
        let standing = room.waiting(user_id, rules, now_ms);
        if standing.is_some() {
            let seen = room.last_seen.get(user_id).copied().unwrap_or(i64::MIN);
            if now_ms.saturating_sub(seen) > rules.heartbeat_timeout_ms / 3 {
                room.touch(user_id, now_ms);
            }
        }
        Ok(standing)
    }

    async fn leave(&self, event_id: &str, user_id: &str) -> Result<bool, RoomError> {
        let event = self.event(event_id);
        let mut room = lock(&event);
        let waited = room.unqueue(user_id).is_some();
        let held = room.end_slot(user_id);
        if waited || held {
            room.left_total += 1;
        }
        Ok(waited || held)
    }

    async fn heartbeat(
        &self,
        event_id: &str,
        user_ids: &[String],
        now_ms: i64,
    ) -> Result<(), RoomError> {
        let event = self.event(event_id);
        let mut room = lock(&event);
        for user in user_ids {
            // Only waiters have heartbeats; an admitted user needs none.
            if room.members.contains_key(user) {
                room.touch(user, now_ms);
            }
        }
        Ok(())
    }

    async fn tick(
        &self,
        event_id: &str,
        rules: &RoomRules,
        now_ms: i64,
    ) -> Result<Tick, RoomError> {
        let event = self.event(event_id);
        let mut room = lock(&event);
        let mut tick = Tick::default();

        let ran_out: Vec<(i64, String)> = room
            .by_expiry
            .range(..(now_ms + 1, String::new()))
            .take(pace::SWEEP_LIMIT)
            .cloned()
            .collect();
        for (_, user) in ran_out {
            room.end_slot(&user);
            tick.expired.push(user);
        }

        let silent: Vec<(i64, String)> = room
            .by_last_seen
            .range(..(now_ms - rules.heartbeat_timeout_ms + 1, String::new()))
            .take(pace::SWEEP_LIMIT)
            .cloned()
            .collect();
        for (_, user) in silent {
            room.unqueue(&user);
            tick.abandoned.push(user);
        }
        room.abandoned_total += tick.abandoned.len() as u64;

        let credit = pace::credit(rules, room.credit, room.last_tick_ms, now_ms);
        let active = room.active(now_ms);
        let n = pace::admissible(rules, credit, active);
        let (vip, normal) = pace::split(
            n,
            rules.vip_share,
            room.vip.len() as u64,
            room.normal.len() as u64,
        );
        let expires_at_ms = now_ms + rules.admission_ttl_ms;
        for (lane, count) in [(Lane::Vip, vip), (Lane::Normal, normal)] {
            for _ in 0..count {
                let Some((_, user)) = room.line(lane).pop_first() else {
                    break;
                };
                room.members.remove(&user);
                room.forget_heartbeat(&user);
                room.admitted.insert(user.clone(), (lane, expires_at_ms));
                room.by_expiry.insert((expires_at_ms, user.clone()));
                tick.admitted.push((user, lane, expires_at_ms));
            }
        }
        room.credit = credit - tick.admitted.len() as f64;
        room.last_tick_ms = Some(now_ms);
        room.admitted_total += tick.admitted.len() as u64;

        tick.heads = room.heads();
        tick.active = active + tick.admitted.len() as u64;
        tick.admitted_total = room.admitted_total;
        Ok(tick)
    }

    async fn admission(
        &self,
        event_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, RoomError> {
        let event = self.event(event_id);
        let room = lock(&event);
        Ok(match room.slot(user_id, now_ms) {
            Some(Standing::Admitted { expires_at_ms, .. }) => Some(expires_at_ms),
            _ => None,
        })
    }

    async fn release(&self, event_id: &str, user_id: &str) -> Result<bool, RoomError> {
        let event = self.event(event_id);
        let mut room = lock(&event);
        Ok(room.end_slot(user_id))
    }

    async fn stats(&self, event_id: &str, now_ms: i64) -> Result<RoomStats, RoomError> {
        let event = self.event(event_id);
        let room = lock(&event);
        Ok(RoomStats {
            waiting: Lane::ALL
                .iter()
                .map(|&lane| (lane, room.line_ref(lane).len() as u64))
                .collect(),
            active: room.active(now_ms),
            admitted_total: room.admitted_total,
            abandoned_total: room.abandoned_total,
            left_total: room.left_total,
        })
    }

    async fn lead(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, RoomError> {
        let mut leader = lock(&self.leader);
        let free = match &*leader {
            None => true,
            Some((current, until)) => current == holder || *until <= now_ms,
        };
        if free {
            *leader = Some((holder.to_owned(), now_ms + ttl_ms));
        }
        Ok(free)
    }
}
