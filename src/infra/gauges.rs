//! Business gauges sampled from the database every 15 seconds on each instance (they agree, so
//! dashboards take `max` across instances): orders by state and units sold per product of events on
//! sale, and the mail outbox backlog. Read from the replica when there is one.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::app::AppState;

const EVERY: Duration = Duration::from_secs(15);

/// Samples forever.
pub async fn sample_forever(state: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = sample(&state.read_db).await {
            tracing::debug!(error = %e, "business gauges not sampled");
        }
    }
}

/// Reads the figures once and sets the gauges.
pub async fn sample(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let query = |sql: &str| Statement::from_string(backend, sql.to_owned());

    let backlog = db
        .query_one_raw(query(
            "SELECT COUNT(*) AS n FROM mail_outbox WHERE status = 'PENDING'",
        ))
        .await?
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap_or_default();
    metrics::gauge!("boxoffice_mail_outbox_backlog").set(backlog as f64);

    for row in db
        .query_all_raw(query(
            "SELECT o.event_id AS event_id, o.status AS status, COUNT(*) AS n \
             FROM orders o JOIN events e ON e.id = o.event_id \
             WHERE e.status = 'PUBLISHED' GROUP BY o.event_id, o.status",
        ))
        .await?
    {
        let (Ok(event), Ok(status), Ok(n)) = (
            row.try_get::<String>("", "event_id"),
            row.try_get::<String>("", "status"),
            row.try_get::<i64>("", "n"),
        ) else {
            continue;
        };
        metrics::gauge!("boxoffice_orders", "event" => event, "status" => status).set(n as f64);
    }

    for row in db
        .query_all_raw(query(
            "SELECT p.event_id AS event_id, p.id AS product_id, p.quantity AS quantity, \
             COALESCE(SUM(CASE WHEN o.status = 'CONFIRMED' THEN i.quantity ELSE 0 END), 0) AS sold \
             FROM products p JOIN events e ON e.id = p.event_id \
             LEFT JOIN order_items i ON i.product_id = p.id \
             LEFT JOIN orders o ON o.id = i.order_id \
             WHERE e.status = 'PUBLISHED' GROUP BY p.event_id, p.id, p.quantity",
        ))
        .await?
    {
        let (Ok(event), Ok(product)) = (
            row.try_get::<String>("", "event_id"),
            row.try_get::<String>("", "product_id"),
        ) else {
            continue;
        };
        let quantity = row.try_get::<i32>("", "quantity").unwrap_or_default();
        // SUM is DECIMAL on MariaDB and INTEGER on SQLite.
        let sold = row
            .try_get::<i64>("", "sold")
            .ok()
            .or_else(|| {
                row.try_get::<rust_decimal::Decimal>("", "sold")
                    .ok()
                    .and_then(|d| i64::try_from(d).ok())
            })
            .unwrap_or_default();
        metrics::gauge!("boxoffice_product_sold", "event" => event.clone(), "product" => product.clone())
            .set(sold as f64);
        metrics::gauge!("boxoffice_product_quantity", "event" => event, "product" => product)
            .set(f64::from(quantity));
    }
    Ok(())
}
