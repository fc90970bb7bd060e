//! The group-commit batchers of the money path, one per kind of write, started with the app.

use crate::{
    infra::batch::Batcher,
    orders::{
        checkout::batch::{self as place, Placed},
        hooks::OrderChange,
        payment::{
            flow::{self, Paying, PayingRead, PreparedRow},
            settle_batch as settle,
        },
    },
};

/// Workers per batcher. One: everything that arrives while a batch is in the database waits
/// for the next batch, so under a crowd batches grow to what the database can take, and the
/// statements, commits and round trips per order shrink. Two workers (each taking what arrived
/// since the other started) made batches half as large; on the 2-core sell-out they sold
/// 5–10 % fewer orders per second at a higher p99 (BENCHMARKS.md, 2026-12-05 evening).
const WORKERS: usize = 1;

/// Rows per read or insert batch.
const READS: usize = 64;

/// Checkout and payment settling in batches.
pub struct Batches {
    /// `POST /orders` of plans without seats or pre-orders.
    pub place: Batcher<place::Job, Placed>,
    /// Orders read for paying and confirming.
    pub paying: Batcher<PayingRead, Option<Paying>>,
    /// `PREPARED` payment rows (`POST /orders/{id}/pay`).
    pub prepared: Batcher<PreparedRow, ()>,
    /// Ordinary captures (`POST /orders/{id}/pay/confirm`, gateway callbacks).
    pub settle: Batcher<settle::Job, Option<OrderChange>>,
}

impl Batches {
    /// Starts the workers (inside the Tokio runtime).
    pub fn start() -> Self {
        Self {
            place: Batcher::spawn("place_order", place::MAX_BATCH, WORKERS, place::flush),
            paying: Batcher::spawn("read_paying", READS, WORKERS, flow::read_batch),
            prepared: Batcher::spawn("insert_prepared", READS, WORKERS, flow::insert_prepared),
            settle: Batcher::spawn("settle_payment", settle::MAX_BATCH, WORKERS, settle::flush),
        }
    }
}
