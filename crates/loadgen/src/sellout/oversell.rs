//! The oversell check, read from the server's own database after the run: what was confirmed,
//! what the stock counter says, what its ledger says, and how many tickets were issued.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::db::Database;

/// What the database says about the product after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockFacts {
    /// `mariadb` or `sqlite`.
    pub backend: &'static str,
    /// Units the product was created with.
    pub tickets: i64,
    /// Units in `CONFIRMED` orders.
    pub confirmed_units: i64,
    /// Units still held by `PENDING` orders.
    pub pending_units: i64,
    /// `stock_counters.remaining` of the product.
    pub remaining: i64,
    /// `SUM(delta)` of its `stock_movements`.
    pub ledger_sum: i64,
    /// Rows in `tickets` for the product.
    pub ticket_rows: i64,
}

/// The verdict on those facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OversellCheck {
    /// The facts it is based on.
    #[serde(flatten)]
    pub facts: StockFacts,
    /// Units confirmed beyond the tickets on sale; must be 0.
    pub oversell: i64,
    /// Every broken rule, in words; must be empty.
    pub problems: Vec<String>,
}

impl OversellCheck {
    /// Applies the rules: confirmed ≤ tickets, counter ≥ 0 and equal to its ledger, one ticket
    /// row per confirmed unit, and every unit accounted for (remaining + confirmed + held).
    pub fn judge(facts: StockFacts) -> Self {
        let StockFacts {
            tickets,
            confirmed_units,
            pending_units,
            remaining,
            ledger_sum,
            ticket_rows,
            ..
        } = facts;
        let oversell = (confirmed_units - tickets).max(0);
        let mut problems = Vec::new();
        if oversell > 0 {
            problems.push(format!(
                "{confirmed_units} units confirmed for {tickets} tickets: oversold by {oversell}"
            ));
        }
        if remaining < 0 {
            problems.push(format!("the stock counter is negative: {remaining}"));
        }
        if remaining != ledger_sum {
            problems.push(format!(
                "the stock counter says {remaining}, its ledger sums to {ledger_sum}"
            ));
        }
        if ticket_rows != confirmed_units {
            problems.push(format!(
                "{ticket_rows} ticket rows for {confirmed_units} confirmed units"
            ));
        }
        if remaining + confirmed_units + pending_units != tickets {
            problems.push(format!(
                "remaining {remaining} + confirmed {confirmed_units} + held by pending orders {pending_units} ≠ {tickets} tickets"
            ));
        }
        Self {
            facts,
            oversell,
            problems,
        }
    }

    /// Whether every rule held.
    pub fn passed(&self) -> bool {
        self.oversell == 0 && self.problems.is_empty()
    }
}

/// Units of the product in orders of one status.
const UNITS_BY_STATUS: &str = "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS SIGNED) \
     FROM order_items i JOIN orders o ON o.id = i.order_id \
     WHERE i.product_id = ? AND o.status = ?";

/// Reads the facts about `product_id` (created with `tickets` units) and judges them.
pub async fn check(database_url: &str, product_id: &str, tickets: u32) -> Result<OversellCheck> {
    let mut db = Database::open(database_url).await?;
    let facts = read(&mut db, product_id, tickets).await;
    db.close().await;
    Ok(OversellCheck::judge(facts?))
}

async fn read(db: &mut Database, product_id: &str, tickets: u32) -> Result<StockFacts> {
    let stock_id = db
        .text("SELECT stock_id FROM products WHERE id = ?", &[product_id])
        .await?
        .with_context(|| format!("product {product_id} has no stock counter in the database"))?;
    let confirmed_units = db
        .integer(UNITS_BY_STATUS, &[product_id, "CONFIRMED"])
        .await?
        .unwrap_or(0);
    let pending_units = db
        .integer(UNITS_BY_STATUS, &[product_id, "PENDING"])
        .await?
        .unwrap_or(0);
    let remaining = db
        .integer(
            "SELECT remaining FROM stock_counters WHERE id = ?",
            &[&stock_id],
        )
        .await?
        .with_context(|| format!("stock counter {stock_id} is missing"))?;
    let ledger_sum = db
        .integer(
            "SELECT CAST(COALESCE(SUM(delta), 0) AS SIGNED) FROM stock_movements WHERE stock_id = ?",
            &[&stock_id],
        )
        .await?
        .unwrap_or(0);
    let ticket_rows = db
        .integer(
            "SELECT COUNT(*) FROM tickets WHERE product_id = ?",
            &[product_id],
        )
        .await?
        .unwrap_or(0);
    Ok(StockFacts {
        backend: db.backend(),
        tickets: i64::from(tickets),
        confirmed_units,
        pending_units,
        remaining,
        ledger_sum,
        ticket_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sold_out() -> StockFacts {
        StockFacts {
            backend: "mariadb",
            tickets: 100,
            confirmed_units: 100,
            pending_units: 0,
            remaining: 0,
            ledger_sum: 0,
            ticket_rows: 100,
        }
    }

    #[test]
    fn a_clean_sell_out_passes() {
        let check = OversellCheck::judge(sold_out());
        assert!(check.passed(), "{:?}", check.problems);
        assert_eq!(check.oversell, 0);
        // Unsold units and held ones are fine as long as they add up.
        let partial = OversellCheck::judge(StockFacts {
            confirmed_units: 90,
            pending_units: 4,
            remaining: 6,
            ledger_sum: 6,
            ticket_rows: 90,
            ..sold_out()
        });
        assert!(partial.passed(), "{:?}", partial.problems);
    }

    #[test]
    fn oversell_and_every_broken_rule_are_reported() {
        let check = OversellCheck::judge(StockFacts {
            confirmed_units: 103,
            remaining: -3,
            ledger_sum: 0,
            ticket_rows: 102,
            ..sold_out()
        });
        assert!(!check.passed());
        assert_eq!(check.oversell, 3);
        assert_eq!(check.problems.len(), 4, "{:?}", check.problems);
        assert!(check.problems[0].contains("oversold by 3"));
        assert!(check.problems[1].contains("negative: -3"));
        assert!(check.problems[2].contains("ledger sums to 0"));
        assert!(check.problems[3].contains("102 ticket rows for 103"));
        // remaining −3 + confirmed 103 + held 0 = 100: the units themselves add up.
    }

    /// The columns the check reads, as boxoffice's migration names them; two confirmed units,
    /// one held, one released by a canceled order, one left.
    const FIXTURE: &str = "
        CREATE TABLE products (id VARCHAR(36) PRIMARY KEY, stock_id VARCHAR(36));
        CREATE TABLE stock_counters (id VARCHAR(36) PRIMARY KEY, remaining BIGINT NOT NULL);
        CREATE TABLE stock_movements (id INT PRIMARY KEY, stock_id VARCHAR(36), delta BIGINT);
        CREATE TABLE orders (id VARCHAR(36) PRIMARY KEY, status VARCHAR(16));
        CREATE TABLE order_items (id INT PRIMARY KEY, order_id VARCHAR(36), product_id VARCHAR(36), quantity INT);
        CREATE TABLE tickets (id INT PRIMARY KEY, product_id VARCHAR(36));
        INSERT INTO products VALUES ('p', 's');
        INSERT INTO stock_counters VALUES ('s', 1);
        INSERT INTO stock_movements VALUES (1, 's', 4), (2, 's', -1), (3, 's', -1), (4, 's', -1), (5, 's', -1), (6, 's', 1);
        INSERT INTO orders VALUES ('o1', 'CONFIRMED'), ('o2', 'CONFIRMED'), ('o3', 'PENDING'), ('o4', 'CANCELED');
        INSERT INTO order_items VALUES (1, 'o1', 'p', 1), (2, 'o2', 'p', 1), (3, 'o3', 'p', 1), (4, 'o4', 'p', 1);
        INSERT INTO tickets VALUES (1, 'p'), (2, 'p');";

    fn expected(backend: &'static str) -> StockFacts {
        StockFacts {
            backend,
            tickets: 4,
            confirmed_units: 2,
            pending_units: 1,
            remaining: 1,
            ledger_sum: 1,
            ticket_rows: 2,
        }
    }

    #[tokio::test]
    async fn reads_the_facts_from_a_sqlite_database() {
        use sqlx::Connection;
        let path =
            std::env::temp_dir().join(format!("loadgen-oversell-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}", path.display());
        let options = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .expect("url")
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("create");
        sqlx::raw_sql(FIXTURE)
            .execute(&mut conn)
            .await
            .expect("fixture");
        conn.close().await.expect("close");

        let result = check(&url, "p", 4).await;
        std::fs::remove_file(&path).ok();
        let check = result.expect("check");
        assert_eq!(check.facts, expected("sqlite"));
        assert!(check.passed(), "{:?}", check.problems);
    }

    /// Runs only with `LOADGEN_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306` (a server where a
    /// scratch database may be created and dropped).
    #[tokio::test]
    async fn reads_the_facts_from_mariadb_when_one_is_given() {
        use sqlx::Connection;
        let Ok(server) = std::env::var("LOADGEN_TEST_MYSQL_URL") else {
            return;
        };
        let options = crate::db::mysql_options(&server).expect("url");
        let mut admin = crate::db::connect_mysql(&options).await.expect("connect");
        let name = format!("loadgen_oversell_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create");
        let url = format!("{}/{name}", server.trim_end_matches('/'));
        let mut conn = crate::db::connect_mysql(&crate::db::mysql_options(&url).expect("url"))
            .await
            .expect("connect");
        let fixture = sqlx::raw_sql(FIXTURE).execute(&mut conn).await;
        conn.close().await.ok();
        let result = match fixture {
            Ok(_) => check(&url, "p", 4).await,
            Err(error) => Err(error.into()),
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("drop");
        let check = result.expect("check");
        assert_eq!(check.facts, expected("mariadb"));
        assert!(check.passed(), "{:?}", check.problems);
    }

    #[test]
    fn lost_units_fail_even_without_oversell() {
        let check = OversellCheck::judge(StockFacts {
            confirmed_units: 95,
            ticket_rows: 95,
            ..sold_out()
        });
        assert_eq!(check.oversell, 0);
        assert!(!check.passed());
        assert_eq!(check.problems.len(), 1);
        assert!(check.problems[0].contains("≠ 100 tickets"));
    }
}
