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

/// The largest batch of any kind: each multi-row statement stays far below any bind-parameter
/// limit, and the id lists it pads (`db::padded`) stay within `db::MAX_LIST`.
pub const MAX_BATCH: usize = crate::db::MAX_LIST;

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
    /// Starts the workers (inside the Tokio runtime): batches of at most `max` (`ORDER_BATCH_MAX`),
    /// `workers` of each kind (`ORDER_BATCH_WORKERS`). One worker is the default: everything that
    /// arrives while a batch is in the database waits for the next batch, so under a crowd
    /// batches grow to what the database can take, and the statements, commits and round trips
    /// per order shrink. Two workers (each taking what arrived since the other started) made
    /// batches half as large; on the 2-core sell-out they sold 5–10 % fewer orders per second at a
    /// higher p99 (BENCHMARKS.md, 2026-12-05 evening).
    pub fn start(max: usize, workers: usize) -> Self {
        let max = max.clamp(1, MAX_BATCH);
        Self {
            place: Batcher::spawn("place_order", max, workers, place::flush),
            paying: Batcher::spawn("read_paying", max, workers, flow::read_batch),
            prepared: Batcher::spawn("insert_prepared", max, workers, flow::insert_prepared),
            settle: Batcher::spawn("settle_payment", max, workers, settle::flush),
        }
    }
}
