//! Seat states, the 2-bit state document, and the in-process caches of both seat documents.

use std::{future::Future, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use moka::sync::Cache;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::{sync::OnceCell, time::Instant};
use utoipa::ToSchema;

use crate::{db::entities::events, infra::secrets::hex};

/// The state of one seat, as stored (`seats.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatState {
    /// Can be taken.
    Available,
    /// In a pending order.
    Held,
    /// Paid for.
    Sold,
    /// Withheld by the organizer (production holds, wheelchair places).
    Blocked,
}

impl SeatState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "AVAILABLE",
            Self::Held => "HELD",
            Self::Sold => "SOLD",
            Self::Blocked => "BLOCKED",
        }
    }

    /// From the stored name; anything unknown counts as blocked, so it is never offered.
    pub fn from_db(s: &str) -> Self {
        match s {
            "AVAILABLE" => Self::Available,
            "HELD" => Self::Held,
            "SOLD" => Self::Sold,
            _ => Self::Blocked,
        }
    }

    /// The 2-bit code of the state document.
    pub fn bits(self) -> u8 {
        match self {
            Self::Available => 0,
            Self::Held => 1,
            Self::Sold => 2,
            Self::Blocked => 3,
        }
    }
}

/// Name of the encoding in the state document.
pub const ENCODING: &str = "2bit-base64";

/// Packs states 4 to a byte, seat `i` in bits `2*(i%4)..2*(i%4)+2` of byte `i/4` (the first
/// seat in the lowest bits); a partial last byte is padded with zeros.
pub fn pack(states: impl IntoIterator<Item = SeatState>) -> Vec<u8> {
    let states: Vec<SeatState> = states.into_iter().collect();
    let taken: Vec<(usize, SeatState)> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != SeatState::Available)
        .map(|(i, s)| (i, *s))
        .collect();
    pack_sparse(states.len(), &taken)
}

/// Packs `seat_count` seats given only those that are not available (the rest are 0); seats
/// past `seat_count` are ignored.
pub fn pack_sparse(seat_count: usize, taken: &[(usize, SeatState)]) -> Vec<u8> {
    let mut out = vec![0u8; seat_count.div_ceil(4)];
    for (position, state) in taken {
        if *position < seat_count {
            out[position / 4] |= state.bits() << ((position % 4) * 2);
        }
    }
    out
}

/// The 2-bit code of seat `position` in packed bytes (tests and clients do the same).
pub fn bits_at(packed: &[u8], position: usize) -> Option<u8> {
    packed
        .get(position / 4)
        .map(|b| (b >> ((position % 4) * 2)) & 3)
}

/// `GET …/seats/state`: every seat's state, 2 bits each, in layout order (the example: seat 1
/// held, seat 4 blocked, the rest available).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"version": 3, "seat_count": 6, "encoding": "2bit-base64", "data": "BAM="}))]
pub struct StateDocument {
    /// Layout version the positions refer to (fetch `…/seats/layout?version=` when it changes).
    pub version: i32,
    /// Number of seats.
    pub seat_count: i64,
    /// Always `2bit-base64`.
    pub encoding: &'static str,
    /// Standard base64 (with padding) of the packed states. Seat at position `i` is
    /// `(byte[i >> 2] >> ((i & 3) * 2)) & 3`: 0 available, 1 held, 2 sold, 3 blocked.
    pub data: String,
}

/// A serialized document with its gzip form and entity tag, ready to send many times.
#[derive(Debug)]
pub struct Encoded {
    /// JSON bytes.
    pub json: Bytes,
    /// The same, gzip-compressed.
    pub gzip: Bytes,
    /// Entity tag value without quotes (the gzip form adds `-gz`).
    pub tag: String,
}

impl Encoded {
    /// Compresses `json` and tags it with `tag`.
    pub fn new(json: Vec<u8>, tag: String) -> std::io::Result<Self> {
        let gzip = gzip(&json)?;
        Ok(Self {
            json: Bytes::from(json),
            gzip: Bytes::from(gzip),
            tag,
        })
    }

    /// Tags the document by its content, so a rebuild that changed nothing keeps its tag.
    pub fn content_tagged(json: Vec<u8>) -> std::io::Result<Self> {
        let tag = hex(&Sha256::digest(&json)[..12]);
        Self::new(json, tag)
    }
}

/// Gzip at the default level.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::default(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// What one read of a performance found: its event (for visibility) and, when it has a seat
/// map, the encoded state document.
#[derive(Debug)]
pub struct Snapshot {
    /// The performance's event, as it was at the read.
    pub event: events::Model,
    /// Layout version (0: no seat map).
    pub version: i32,
    /// The state document (absent without a seat map).
    pub state: Option<Encoded>,
}

/// A layout document being loaded or loaded; `None` inside when that version is not stored.
type LayoutCell = Arc<OnceCell<Option<Arc<LayoutBytes>>>>;

/// A stored layout document ready to send.
#[derive(Debug)]
pub struct LayoutBytes {
    /// Event the performance belongs to.
    pub event_id: String,
    /// Version.
    pub version: i32,
    /// The document.
    pub encoded: Encoded,
}

/// How long a snapshot counts as fresh: it is rebuilt at most this often per instance.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(1);
/// How long past [`SNAPSHOT_TTL`] a snapshot may still be served while its replacement is
/// being built, so readers never wait for a rebuild under steady load. Past this a reader waits.
pub const SNAPSHOT_GRACE: Duration = Duration::from_millis(250);
/// Memory kept for layout documents (each a few MiB for a stadium).
const LAYOUT_BYTES: u64 = 128 * 1024 * 1024;

/// Per-instance caches of the seat documents.
#[derive(Clone)]
pub struct SeatCache {
    /// By performance id: one instance reads a performance's seats at most once a second.
    snapshots: Refreshing<Snapshot>,
    /// Loads in flight or just done, by `performance:version` (single-flight for cold starts).
    layout_loads: Cache<String, LayoutCell>,
    /// Loaded layout documents by `performance:version`, weighed by size. A version never
    /// changes, so these need no invalidation.
    layouts: Cache<String, Arc<LayoutBytes>>,
}

impl Default for SeatCache {
    fn default() -> Self {
        Self::new()
    }
}

impl SeatCache {
    /// Empty caches.
    pub fn new() -> Self {
        Self {
            snapshots: Refreshing::new(SNAPSHOT_TTL, SNAPSHOT_GRACE),
            layout_loads: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(Duration::from_secs(10))
                .build(),
            layouts: Cache::builder()
                .max_capacity(LAYOUT_BYTES)
                .weigher(|_, v: &Arc<LayoutBytes>| {
                    u32::try_from(v.encoded.json.len() + v.encoded.gzip.len()).unwrap_or(u32::MAX)
                })
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }

    /// The performance's snapshot, built by `build` at most once per [`SNAPSHOT_TTL`]; see
    /// [`Refreshing::get`].
    pub async fn snapshot<F, Fut, E>(
        &self,
        performance_id: &str,
        build: F,
    ) -> Result<Option<Arc<Snapshot>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Snapshot>, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.snapshots.get(performance_id, build).await
    }

    /// Forgets a performance's snapshot (after a change made on this instance, so its author
    /// sees it at once; other instances catch up within [`SNAPSHOT_TTL`]).
    pub fn forget(&self, performance_id: &str) {
        self.snapshots.forget(performance_id);
    }

    /// A layout document, loaded by `load` once per instance and version. A version that is
    /// not stored is not remembered (it may be about to be).
    pub async fn layout<F, Fut, E>(
        &self,
        performance_id: &str,
        version: i32,
        load: F,
    ) -> Result<Option<Arc<LayoutBytes>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<LayoutBytes>, E>>,
    {
        let key = format!("{performance_id}:{version}");
        if let Some(hit) = self.layouts.get(&key) {
            return Ok(Some(hit));
        }
        let cell = self
            .layout_loads
            .get_with(key.clone(), || Arc::new(OnceCell::new()));
        let loaded = cell
            .get_or_try_init(|| async { Ok(load().await?.map(Arc::new)) })
            .await?
            .clone();
        match &loaded {
            Some(bytes) => self.layouts.insert(key, bytes.clone()),
            None => self.layout_loads.invalidate(&key),
        }
        Ok(loaded)
    }
}

/// Values rebuilt at most once per `ttl` each, served stale for up to `grace` longer while one
/// background task rebuilds them. Concurrent misses build once (single-flight).
pub struct Refreshing<T> {
    slots: Cache<String, Arc<Slot<T>>>,
    ttl: Duration,
    grace: Duration,
}

impl<T> Clone for Refreshing<T> {
    fn clone(&self) -> Self {
        Self {
            slots: self.slots.clone(),
            ttl: self.ttl,
            grace: self.grace,
        }
    }
}

/// When a value was read from its source (the start of its build), and the value (`None`:
/// the source has no such thing).
type Stamped<T> = (Instant, Option<Arc<T>>);

struct Slot<T> {
    value: std::sync::Mutex<Option<Stamped<T>>>,
    /// Held by whoever builds; `try_lock` decides who refreshes in the background.
    building: Arc<tokio::sync::Mutex<()>>,
}

impl<T> Slot<T> {
    fn read(&self) -> Option<Stamped<T>> {
        self.value.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn store(&self, at: Instant, value: Option<Arc<T>>) {
        *self.value.lock().unwrap_or_else(|p| p.into_inner()) = Some((at, value));
    }
}

impl<T: Send + Sync + 'static> Refreshing<T> {
    /// Empty, with the given freshness and grace.
    pub fn new(ttl: Duration, grace: Duration) -> Self {
        Self {
            slots: Cache::builder()
                .max_capacity(10_000)
                // A slot nobody asked about for a minute is dropped with its value.
                .time_to_idle(Duration::from_secs(60))
                .build(),
            ttl,
            grace,
        }
    }

    /// The value for `key`. Fresh (younger than `ttl`): returned as is. Stale but within
    /// `grace`: returned as is, and if no build is running one starts in the background.
    /// Otherwise the caller waits for one build, shared with every other waiter.
    pub async fn get<F, Fut, E>(&self, key: &str, build: F) -> Result<Option<Arc<T>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let slot = self.slots.get_with(key.to_owned(), || {
            Arc::new(Slot {
                value: std::sync::Mutex::new(None),
                building: Arc::new(tokio::sync::Mutex::new(())),
            })
        });
        if let Some((at, value)) = slot.read() {
            let age = at.elapsed();
            if age < self.ttl {
                return Ok(value);
            }
            if age < self.ttl + self.grace {
                if let Ok(guard) = slot.building.clone().try_lock_owned() {
                    let (slot, build) = (slot.clone(), build());
                    tokio::spawn(async move {
                        let started = Instant::now();
                        match build.await {
                            Ok(fresh) => slot.store(started, fresh.map(Arc::new)),
                            // The next reader past the grace period retries, and sees the error.
                            Err(e) => {
                                tracing::warn!(error = %e, "background seat snapshot refresh failed")
                            }
                        }
                        drop(guard);
                    });
                }
                return Ok(value);
            }
        }
        let _guard = slot.building.lock().await;
        // Whoever held the lock may just have built it.
        if let Some((at, value)) = slot.read()
            && at.elapsed() < self.ttl
        {
            return Ok(value);
        }
        let started = Instant::now();
        let value = build().await?.map(Arc::new);
        slot.store(started, value.clone());
        Ok(value)
    }

    /// Drops a key's value, so the next reader builds afresh.
    pub fn forget(&self, key: &str) {
        self.slots.invalidate(key);
    }
}

/// Builds the encoded state document of `seat_count` seats from those not available.
pub fn encode_state(
    version: i32,
    seat_count: usize,
    taken: &[(usize, SeatState)],
) -> std::io::Result<Encoded> {
    let doc = StateDocument {
        version,
        seat_count: i64::try_from(seat_count).unwrap_or(i64::MAX),
        encoding: ENCODING,
        data: STANDARD.encode(pack_sparse(seat_count, taken)),
    };
    let json = serde_json::to_vec(&doc).map_err(std::io::Error::other)?;
    Encoded::content_tagged(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_pack_four_to_a_byte_lowest_bits_first() {
        use SeatState::*;
        let packed = pack([Available, Held, Sold, Blocked, Held]);
        assert_eq!(packed, vec![0b11_10_01_00, 0b01]);
        assert_eq!(bits_at(&packed, 2), Some(2));
        assert_eq!(bits_at(&packed, 4), Some(1));
        assert_eq!(bits_at(&packed, 8), None);
        assert_eq!(
            pack_sparse(
                5,
                &[(1, Held), (2, Sold), (3, Blocked), (4, Held), (9, Sold)]
            ),
            packed
        );
    }

    #[test]
    fn the_documented_example_is_what_the_encoder_writes() {
        let encoded =
            encode_state(3, 6, &[(1, SeatState::Held), (4, SeatState::Blocked)]).expect("encode");
        let doc: serde_json::Value = serde_json::from_slice(&encoded.json).expect("json");
        assert_eq!(
            doc,
            serde_json::json!({"version": 3, "seat_count": 6, "encoding": "2bit-base64", "data": "BAM="})
        );
    }

    #[test]
    fn unknown_stored_states_are_never_offered() {
        assert_eq!(SeatState::from_db("WHATEVER"), SeatState::Blocked);
        for s in ["AVAILABLE", "HELD", "SOLD", "BLOCKED"] {
            assert_eq!(SeatState::from_db(s).as_str(), s);
        }
    }

    #[test]
    fn fifty_thousand_seats_fit_in_well_under_thirty_kilobytes() {
        // Worst case for size: nothing repeats.
        let taken: Vec<_> = (0..50_000)
            .map(|i| {
                (
                    i,
                    [SeatState::Held, SeatState::Sold, SeatState::Blocked][i % 7 % 3],
                )
            })
            .collect();
        let encoded = encode_state(1, 50_000, &taken).expect("encode");
        assert!(encoded.json.len() < 30 * 1024, "{}", encoded.json.len());
        assert!(encoded.gzip.len() < encoded.json.len());
    }

    #[tokio::test]
    async fn concurrent_misses_build_once() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let cache: Refreshing<u32> = Refreshing::new(SNAPSHOT_TTL, SNAPSHOT_GRACE);
        let builds = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, builds) = (cache.clone(), builds.clone());
                tokio::spawn(async move {
                    cache
                        .get("p", || async move {
                            builds.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok::<_, String>(Some(7))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await, Ok(Ok(Some(v))) if *v == 7));
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    async fn get(cache: &Refreshing<u32>, next: u32) -> Option<u32> {
        cache
            .get("p", move || async move { Ok::<_, String>(Some(next)) })
            .await
            .expect("built")
            .map(|v| *v)
    }

    #[tokio::test(start_paused = true)]
    async fn stale_values_are_served_while_one_refresh_runs_then_waited_for() {
        let cache: Refreshing<u32> = Refreshing::new(SNAPSHOT_TTL, SNAPSHOT_GRACE);
        assert_eq!(get(&cache, 1).await, Some(1));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(get(&cache, 2).await, Some(1), "fresh: no rebuild");
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(get(&cache, 2).await, Some(1), "stale within grace");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            get(&cache, 3).await,
            Some(2),
            "the background refresh landed"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            get(&cache, 4).await,
            Some(4),
            "too old: built before answering"
        );
        cache.forget("p");
        assert_eq!(get(&cache, 5).await, Some(5));
    }
}
