//! The contract every load scenario implements.

use std::future::Future;

/// What a step got back when it did get an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The answer the scenario expects.
    Ok,
    /// Some other answer; the label (an HTTP status, a server error code) groups errors in the report.
    Unexpected(String),
}

/// Operation name and outcome of one step; `Err` means no answer at all (a transport error).
pub type Step = (&'static str, anyhow::Result<Status>);

/// A load pattern: per-user state plus one request/response step that the runner repeats.
pub trait Scenario: Send + Sync + 'static {
    /// State owned by one virtual user (its target, its tokens, its counters).
    type User: Send + 'static;

    /// Name of the phase; steps cut short by the runner's timeout are charged to it.
    fn name(&self) -> &'static str;

    /// Builds virtual user `index`; called before the clock starts.
    fn user(&self, index: usize) -> anyhow::Result<Self::User>;

    /// Performs one request for `user` and says how it went.
    fn step(&self, user: &mut Self::User) -> impl Future<Output = Step> + Send;
}
