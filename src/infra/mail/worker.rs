//! Delivers the outbox: claims due rows with a conditional update, so several
//! instances never send one mail twice, and retries failures with back-off.

use std::{sync::Arc, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use tokio::sync::Notify;

use super::{from_row, render, status};
use crate::{
    db::entities::mail_outbox::{self, Column, Entity as Outbox},
    infra::{
        clock::{Clock, to_db},
        metrics,
    },
};

/// How mail leaves the process.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP relay.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The log (demo mode without SMTP): codes become visible to the operator.
    Log,
    /// Nowhere yet: mail waits in the outbox.
    Hold,
}

impl Transport {
    /// Builds the transport from `SMTP_URL`.
    pub fn from_config(smtp_url: Option<&str>, demo: bool) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => Ok(Self::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            )),
            None if demo => Ok(Self::Log),
            None => Ok(Self::Hold),
        }
    }
}

/// Gives up after this many failed deliveries.
const MAX_ATTEMPTS: i32 = 10;
/// A claimed row is left alone by other instances for this long.
const CLAIM_SECONDS: i64 = 120;
/// Rows fetched per pass.
const BATCH: u64 = 20;

/// The outbox worker.
pub struct MailWorker {
    /// Database holding the outbox.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Where mail goes.
    pub transport: Transport,
    /// Sender.
    pub from: Mailbox,
    /// Woken when a mail is enqueued on this instance.
    pub wake: Arc<Notify>,
}

impl MailWorker {
    /// Runs until the process stops.
    pub async fn run(self) {
        if matches!(self.transport, Transport::Hold) {
            return;
        }
        loop {
            match self.deliver_due().await {
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "mail outbox pass failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Delivers what is due now; returns how many rows were looked at.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let now = to_db(self.clock.now());
        let due = Outbox::find()
            .filter(Column::Status.eq(status::PENDING))
            .filter(Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(Column::LockedUntil.is_null())
                    .add(Column::LockedUntil.lt(now)),
            )
            .order_by_asc(Column::NextAttemptAt)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let count = due.len();
        for row in due {
            if self.claim(&row).await? {
                self.deliver(row).await?;
            }
        }
        Ok(count)
    }

    async fn claim(&self, row: &mail_outbox::Model) -> anyhow::Result<bool> {
        let now = self.clock.now();
        let claimed = Outbox::update_many()
            .col_expr(
                Column::LockedUntil,
                Expr::value(to_db(now + time::Duration::seconds(CLAIM_SECONDS))),
            )
            .filter(Column::Id.eq(&row.id))
            .filter(Column::Status.eq(status::PENDING))
            .filter(
                Condition::any()
                    .add(Column::LockedUntil.is_null())
                    .add(Column::LockedUntil.lt(to_db(now))),
            )
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    async fn deliver(&self, row: mail_outbox::Model) -> anyhow::Result<()> {
        let result = self.send(&row).await;
        let now = self.clock.now();
        let update = Outbox::update_many().filter(Column::Id.eq(&row.id));
        match result {
            Ok(final_status) => {
                metrics::mail("sent");
                update
                    .col_expr(Column::Status, Expr::value(final_status))
                    .col_expr(Column::SentAt, Expr::value(Some(to_db(now))))
                    .col_expr(
                        Column::LockedUntil,
                        Expr::value(Option::<time::PrimitiveDateTime>::None),
                    )
                    // Codes in the parameters are secrets; once delivered they are not kept.
                    .col_expr(Column::Params, Expr::value("{}"))
                    .exec(&self.db)
                    .await?;
            }
            Err(e) => {
                metrics::mail("failed");
                let attempts = row.attempts + 1;
                let backoff = 2i64.saturating_pow(attempts.clamp(0, 12) as u32).min(3600);
                let gave_up = attempts >= MAX_ATTEMPTS;
                let next_status = if gave_up {
                    status::FAILED
                } else {
                    status::PENDING
                };
                tracing::warn!(mail_id = %row.id, attempts, error = %e, "mail delivery failed");
                // A mail given up on is never sent, so a code in its parameters has no use left.
                let update = if gave_up {
                    update.col_expr(Column::Params, Expr::value("{}"))
                } else {
                    update
                };
                update
                    .col_expr(Column::Status, Expr::value(next_status))
                    .col_expr(Column::Attempts, Expr::value(attempts))
                    .col_expr(
                        Column::NextAttemptAt,
                        Expr::value(to_db(now + time::Duration::seconds(backoff))),
                    )
                    .col_expr(
                        Column::LockedUntil,
                        Expr::value(Option::<time::PrimitiveDateTime>::None),
                    )
                    .col_expr(
                        Column::LastError,
                        Expr::value(Some(crate::error::truncate(&e.to_string(), 400))),
                    )
                    .exec(&self.db)
                    .await?;
            }
        }
        Ok(())
    }

    async fn send(&self, row: &mail_outbox::Model) -> anyhow::Result<&'static str> {
        let mail = from_row(row)?;
        let rendered = render(&mail, super::MailLocale::from_tag(&row.locale))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                let message = Message::builder()
                    .from(self.from.clone())
                    .to(row.to_address.parse()?)
                    .subject(rendered.subject)
                    .multipart(MultiPart::alternative_plain_html(
                        rendered.text,
                        rendered.html,
                    ))?;
                smtp.send(message).await?;
                Ok(status::SENT)
            }
            Transport::Log => {
                tracing::info!(
                    to = %row.to_address,
                    subject = %rendered.subject,
                    "demo mail (no SMTP_URL):\n{}",
                    rendered.text
                );
                Ok(status::LOGGED)
            }
            Transport::Hold => anyhow::bail!("no transport"),
        }
    }
}
