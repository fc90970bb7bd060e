//! This instance's open queue sockets, by event and user, and what they are pushed when the
//! cluster's progress, admission and departure messages arrive. Positions are derived here
//! from the member's own score and the published head (and from the exact position it had at
//! connect minus admissions since), never increasing; only `GET /queue/status` ranks exactly.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::mpsc;

use super::{
    messages::{Admitted, Gone, GoneReason, Progress, Push, eta},
    room::{Lane, OPEN_SCORE_BASE},
};

/// What a socket task is told to do.
#[derive(Debug)]
pub enum Command {
    /// Send this message.
    Send(Push),
    /// Send this message, then close.
    Close(Push),
    /// Ask the backend for the exact position (pre-queue members after opening).
    Refresh,
}

/// One open socket as the hub sees it.
struct Socket {
    id: u64,
    lane: Lane,
    score: Option<u64>,
    /// Exact position at the last status call, with the lane's admission count then.
    base: Option<(u64, u64)>,
    last_ahead: Option<u64>,
    admitted: bool,
    refreshing: bool,
    paused_sent: bool,
    /// Join time known from the ticket (ms), for wait statistics.
    joined_at_ms: Option<i64>,
    tx: mpsc::Sender<Command>,
}

#[derive(Default)]
struct EventRoom {
    sockets: HashMap<String, Vec<Socket>>,
    /// Admissions per lane seen by this instance (VIP, normal).
    lane_admitted: [u64; 2],
    progress: Option<Progress>,
    waits: VecDeque<u64>,
    pending_waits: Vec<u64>,
}

fn lane_index(lane: Lane) -> usize {
    match lane {
        Lane::Vip => 0,
        Lane::Normal => 1,
    }
}

/// Wait samples kept per event for the operator's average and p90.
const WAIT_SAMPLES: usize = 2048;

/// Registration of a new socket.
pub struct NewSocket {
    /// The event.
    pub event_id: String,
    /// The user.
    pub user_id: String,
    /// Their lane.
    pub lane: Lane,
    /// Their score, when waiting.
    pub score: Option<u64>,
    /// Exact position, when known.
    pub position: Option<u64>,
    /// Already admitted.
    pub admitted: bool,
    /// Join time, when the ticket carried it.
    pub joined_at_ms: Option<i64>,
}

/// The socket registry of one instance.
#[derive(Default)]
pub struct Hub {
    rooms: Mutex<HashMap<String, EventRoom>>,
    next_id: AtomicU64,
}

impl Hub {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, EventRoom>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket; returns its id. The first position it is pushed is its current one.
    pub fn register(&self, new: NewSocket, tx: mpsc::Sender<Command>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut rooms = self.rooms();
        let room = rooms.entry(new.event_id).or_default();
        let at = room.lane_admitted[lane_index(new.lane)];
        let paused = room.progress.as_ref().is_some_and(|p| p.paused);
        if paused {
            let _ = tx.try_send(Command::Send(Push::Paused));
        }
        room.sockets.entry(new.user_id).or_default().push(Socket {
            id,
            lane: new.lane,
            score: new.score,
            base: new.position.map(|p| (p, at)),
            last_ahead: new.position.map(|p| p.saturating_sub(1)),
            admitted: new.admitted,
            refreshing: false,
            paused_sent: paused,
            joined_at_ms: new.joined_at_ms,
            tx,
        });
        id
    }

    /// Removes a socket.
    pub fn unregister(&self, event_id: &str, user_id: &str, id: u64) {
        let mut rooms = self.rooms();
        if let Some(room) = rooms.get_mut(event_id)
            && let Some(list) = room.sockets.get_mut(user_id)
        {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                room.sockets.remove(user_id);
            }
        }
    }

    /// Records an exact position read by a socket task; returns the position to push now (the
    /// next progress message may be a while: it is sent only when something changed).
    pub fn set_position(
        &self,
        event_id: &str,
        user_id: &str,
        id: u64,
        position: u64,
    ) -> Option<Push> {
        let mut rooms = self.rooms();
        let room = rooms.get_mut(event_id)?;
        let at_by_lane = room.lane_admitted;
        let rate = room.progress.as_ref();
        let s = room
            .sockets
            .get_mut(user_id)
            .and_then(|l| l.iter_mut().find(|s| s.id == id))?;
        s.base = Some((position, at_by_lane[lane_index(s.lane)]));
        s.refreshing = false;
        let ahead = position.saturating_sub(1);
        let ahead = s.last_ahead.map_or(ahead, |last| ahead.min(last));
        if s.last_ahead == Some(ahead) {
            return None;
        }
        s.last_ahead = Some(ahead);
        Some(Push::Position {
            position: ahead + 1,
            ahead,
            eta_seconds: rate.and_then(|p| eta(ahead, p.lane_rate(s.lane))),
        })
    }

    /// Pushes positions (and `paused`) after a progress message.
    pub fn on_progress(&self, progress: Progress) {
        let mut rooms = self.rooms();
        let room = rooms.entry(progress.event_id.clone()).or_default();
        for list in room.sockets.values_mut() {
            for s in list.iter_mut().filter(|s| !s.admitted) {
                if progress.paused {
                    if !s.paused_sent {
                        s.paused_sent = true;
                        let _ = s.tx.try_send(Command::Send(Push::Paused));
                    }
                    continue;
                }
                s.paused_sent = false;
                if !progress.open {
                    continue;
                }
                let Some(ahead) = derive_ahead(s, &progress, &room.lane_admitted) else {
                    if s.base.is_none() && !s.refreshing {
                        s.refreshing = true;
                        let _ = s.tx.try_send(Command::Refresh);
                    }
                    continue;
                };
                let ahead = s.last_ahead.map_or(ahead, |last| ahead.min(last));
                if s.last_ahead != Some(ahead) {
                    s.last_ahead = Some(ahead);
                    let _ = s.tx.try_send(Command::Send(Push::Position {
                        position: ahead + 1,
                        ahead,
                        eta_seconds: eta(ahead, progress.lane_rate(s.lane)),
                    }));
                }
            }
        }
        room.progress = Some(progress);
    }

    /// Tells admitted users' sockets at once; `sign` makes each one's admission token.
    pub fn on_admitted(&self, admitted: &Admitted, sign: impl Fn(&str, i64) -> Push, now_ms: i64) {
        let mut rooms = self.rooms();
        let room = rooms.entry(admitted.event_id.clone()).or_default();
        for (user, lane, expires) in &admitted.users {
            room.lane_admitted[lane_index(*lane)] += 1;
            let Some(list) = room.sockets.get_mut(user) else {
                continue;
            };
            let mut sample = None;
            for s in list.iter_mut().filter(|s| !s.admitted) {
                s.admitted = true;
                if let Some(joined) = s.joined_at_ms {
                    sample = Some(now_ms.saturating_sub(joined).max(0) as u64);
                }
                let _ = s.tx.try_send(Command::Send(sign(user, *expires)));
            }
            if let Some(sample) = sample {
                room.pending_waits.push(sample);
            }
        }
    }

    /// Tells and closes the sockets of users whose place or slot ended.
    pub fn on_gone(&self, gone: &Gone) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(&gone.event_id) else {
            return;
        };
        let push = match gone.reason {
            GoneReason::Expired => Push::Expired,
            other => Push::Closed {
                reason: other.as_str().to_owned(),
            },
        };
        for user in &gone.users {
            if let Some(list) = room.sockets.get(user) {
                for s in list {
                    let _ = s.tx.try_send(Command::Close(push.clone()));
                }
            }
        }
    }

    /// Closes every socket (graceful shutdown) or those of one event (queue disabled).
    pub fn close_all(&self, event_id: Option<&str>, reason: &str) {
        let rooms = self.rooms();
        for (event, room) in rooms.iter() {
            if event_id.is_some_and(|e| e != event) {
                continue;
            }
            for s in room.sockets.values().flatten() {
                let _ = s.tx.try_send(Command::Close(Push::Closed {
                    reason: reason.to_owned(),
                }));
            }
        }
    }

    /// Open sockets on this instance.
    pub fn open_sockets(&self) -> usize {
        self.rooms()
            .values()
            .map(|r| r.sockets.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// Per event, the users whose open socket stands for a heartbeat (still waiting).
    pub fn waiting_users(&self) -> Vec<(String, Vec<String>)> {
        self.rooms()
            .iter()
            .map(|(event, room)| {
                let users = room
                    .sockets
                    .iter()
                    .filter(|(_, list)| list.iter().any(|s| !s.admitted))
                    .map(|(u, _)| u.clone())
                    .collect::<Vec<_>>();
                (event.clone(), users)
            })
            .filter(|(_, users)| !users.is_empty())
            .collect()
    }

    /// Per event, open sockets (for the connections gauge).
    pub fn sockets_per_event(&self) -> Vec<(String, usize)> {
        self.rooms()
            .iter()
            .map(|(e, r)| (e.clone(), r.sockets.values().map(Vec::len).sum()))
            .collect()
    }

    /// The latest progress of an event seen here.
    pub fn progress(&self, event_id: &str) -> Option<Progress> {
        self.rooms().get(event_id).and_then(|r| r.progress.clone())
    }

    /// Records a wait sample observed by this instance (published to all).
    pub fn observe_wait(&self, event_id: &str, wait_ms: u64) {
        self.rooms()
            .entry(event_id.to_owned())
            .or_default()
            .pending_waits
            .push(wait_ms);
    }

    /// Takes the samples to publish.
    pub fn take_pending_waits(&self) -> Vec<(String, Vec<u64>)> {
        self.rooms()
            .iter_mut()
            .filter(|(_, r)| !r.pending_waits.is_empty())
            .map(|(e, r)| (e.clone(), std::mem::take(&mut r.pending_waits)))
            .collect()
    }

    /// Adds samples published by any instance.
    pub fn add_waits(&self, event_id: &str, samples: &[u64]) {
        let mut rooms = self.rooms();
        let room = rooms.entry(event_id.to_owned()).or_default();
        for s in samples {
            if room.waits.len() == WAIT_SAMPLES {
                room.waits.pop_front();
            }
            room.waits.push_back(*s);
        }
    }

    /// Average and 90th percentile of recent waits, in ms.
    pub fn wait_summary(&self, event_id: &str) -> (Option<u64>, Option<u64>) {
        let rooms = self.rooms();
        let Some(room) = rooms.get(event_id).filter(|r| !r.waits.is_empty()) else {
            return (None, None);
        };
        let mut sorted: Vec<u64> = room.waits.iter().copied().collect();
        sorted.sort_unstable();
        let avg = sorted.iter().sum::<u64>() / sorted.len() as u64;
        let idx = ((sorted.len() as f64 * 0.9).ceil() as usize).saturating_sub(1);
        (Some(avg), sorted.get(idx).copied())
    }
}

/// People ahead of a socket's member, from its score and the head (after opening, scores are a
/// per-lane sequence, so the difference bounds the rank from above) and from its last exact
/// position minus admissions since; the smaller bound wins.
fn derive_ahead(s: &Socket, progress: &Progress, lane_admitted: &[u64; 2]) -> Option<u64> {
    let (head, _) = progress.head(s.lane);
    let by_score = match (s.score, head) {
        (Some(score), Some(head)) if score >= OPEN_SCORE_BASE && head <= score => {
            Some(score - head)
        }
        _ => None,
    };
    let by_base = s.base.map(|(position, at)| {
        let moved = lane_admitted[lane_index(s.lane)].saturating_sub(at);
        position.saturating_sub(1).saturating_sub(moved)
    });
    match (by_score, by_base) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(head: u64, open: bool) -> Progress {
        Progress {
            event_id: "e".into(),
            heads: vec![(Lane::Normal, Some(head), 10), (Lane::Vip, None, 0)],
            open,
            lane_rates: (1.0, 2.0),
            ..Progress::default()
        }
    }

    fn socket(hub: &Hub, score: u64, position: Option<u64>) -> mpsc::Receiver<Command> {
        let (tx, rx) = mpsc::channel(8);
        hub.register(
            NewSocket {
                event_id: "e".into(),
                user_id: "u".into(),
                lane: Lane::Normal,
                score: Some(score),
                position,
                admitted: false,
                joined_at_ms: None,
            },
            tx,
        );
        rx
    }

    #[test]
    fn a_position_derived_from_the_head_never_increases() {
        let hub = Hub::default();
        let mut rx = socket(&hub, OPEN_SCORE_BASE + 10, Some(6));
        hub.on_progress(progress(OPEN_SCORE_BASE + 7, true));
        match rx.try_recv() {
            Ok(Command::Send(Push::Position { ahead, .. })) => assert_eq!(ahead, 3),
            other => panic!("expected a position, got {other:?}"),
        }
        // A head that went back (a stale message) does not move the member back.
        hub.on_progress(progress(OPEN_SCORE_BASE + 2, true));
        assert!(rx.try_recv().is_err(), "no new position when it would grow");
    }

    #[test]
    fn pre_queue_members_ask_for_their_exact_place_after_opening() {
        let hub = Hub::default();
        let mut rx = socket(&hub, 12345, None);
        hub.on_progress(progress(100, false));
        assert!(rx.try_recv().is_err(), "nothing is shown before opening");
        hub.on_progress(progress(100, true));
        assert!(matches!(rx.try_recv(), Ok(Command::Refresh)));
    }
}
