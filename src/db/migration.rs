//! Schema migrations. Once shipped, a migration never changes: later ones only add.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use sea_orm_migration::prelude::*;

/// Runs every pending migration. On MariaDB, instances starting together are serialised by a
/// named lock per database, taken and released on one dedicated connection (a named lock belongs
/// to the connection that took it, so a pool must not be used for it).
pub async fn run(db: &DatabaseConnection, url: &crate::config::ServiceUrl) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::MySql {
        return Migrator::up(db, None)
            .await
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
    }
    let single = super::connect(url, Some(1)).await?;
    single
        .execute_unprepared("SELECT GET_LOCK(CONCAT('boxoffice_migrate:', DATABASE()), 60)")
        .await?;
    let result = Migrator::up(&single, None).await;
    single
        .execute_unprepared("SELECT RELEASE_LOCK(CONCAT('boxoffice_migrate:', DATABASE()))")
        .await?;
    let _ = single.close().await;
    result.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// The ordered list of migrations.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Foundation),
            Box::new(Security),
            Box::new(Admin),
            Box::new(Catalog),
            Box::new(Seats),
            Box::new(Orders),
            Box::new(Queues),
            Box::new(Identities),
            Box::new(MailRetention),
        ]
    }
}

/// Writes one DDL template for the connected backend.
///
/// Placeholders: `{id}` ids, `{ts}` timestamps, `{bin}` byte-wise collation,
/// `{engine}` table options, `{int}` 32-bit integers, `{doc}` large documents.
pub fn render(backend: DbBackend, template: &str) -> String {
    let mysql = backend == DbBackend::MySql;
    let pick = |m: &'static str, s: &'static str| if mysql { m } else { s };
    template
        .replace("{id}", pick("VARCHAR(36)", "TEXT"))
        .replace("{ts}", pick("DATETIME(6)", "TEXT"))
        .replace("{bin}", pick(" COLLATE utf8mb4_bin", ""))
        .replace(
            "{engine}",
            pick(
                " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
                "",
            ),
        )
        .replace("{int}", pick("INT", "INTEGER"))
        .replace("{doc}", pick("LONGTEXT", "TEXT"))
}

async fn apply(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    let backend = conn.get_database_backend();
    for statement in statements {
        conn.execute_unprepared(&render(backend, statement)).await?;
    }
    Ok(())
}

/// Users, sessions, codes, keys, settings, mail outbox and audit log.
struct Foundation;

impl MigrationName for Foundation {
    fn name(&self) -> &str {
        "m0001_foundation"
    }
}

const FOUNDATION: &[&str] = &[
    "CREATE TABLE settings (
        name VARCHAR(64) NOT NULL PRIMARY KEY,
        value TEXT NOT NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE TABLE users (
        id {id} NOT NULL PRIMARY KEY,
        email VARCHAR(255) NOT NULL,
        email_normalized VARCHAR(255){bin} NOT NULL,
        password VARCHAR(255) NULL,
        name VARCHAR(100) NULL,
        nickname VARCHAR(100) NULL,
        role VARCHAR(16) NOT NULL,
        vip BOOLEAN NOT NULL,
        status VARCHAR(16) NOT NULL,
        locale VARCHAR(8) NOT NULL,
        email_verified_at {ts} NULL,
        failed_login_count {int} NOT NULL,
        failed_login_window_start {ts} NULL,
        locked_until {ts} NULL,
        last_login_at {ts} NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL,
        deleted_at {ts} NULL
    ){engine}",
    "CREATE UNIQUE INDEX ux_users_email_normalized ON users (email_normalized)",
    "CREATE INDEX ix_users_role ON users (role, created_at)",
    "CREATE TABLE user_authorization (
        id {id} NOT NULL PRIMARY KEY,
        user_id {id} NOT NULL,
        family_id {id} NOT NULL,
        kind VARCHAR(16) NOT NULL,
        refresh_token_hash CHAR(64) NOT NULL,
        auth_method VARCHAR(32) NOT NULL,
        created_at {ts} NOT NULL,
        expires_at {ts} NOT NULL,
        used_at {ts} NULL,
        last_used_at {ts} NULL,
        revoked_at {ts} NULL,
        revoke_reason VARCHAR(32) NULL,
        ip VARCHAR(45) NULL,
        user_agent VARCHAR(512) NULL,
        CONSTRAINT fk_user_authorization_user FOREIGN KEY (user_id) REFERENCES users (id)
    ){engine}",
    "CREATE UNIQUE INDEX ux_user_authorization_token ON user_authorization (refresh_token_hash)",
    "CREATE INDEX ix_user_authorization_family ON user_authorization (family_id)",
    "CREATE INDEX ix_user_authorization_user ON user_authorization (user_id, revoked_at)",
    "CREATE INDEX ix_user_authorization_revoked ON user_authorization (revoked_at)",
    "CREATE TABLE email_codes (
        id {id} NOT NULL PRIMARY KEY,
        user_id {id} NOT NULL,
        purpose VARCHAR(32) NOT NULL,
        code_hash CHAR(64) NOT NULL,
        attempts {int} NOT NULL,
        expires_at {ts} NOT NULL,
        sent_at {ts} NOT NULL,
        consumed_at {ts} NULL,
        created_at {ts} NOT NULL,
        CONSTRAINT fk_email_codes_user FOREIGN KEY (user_id) REFERENCES users (id)
    ){engine}",
    "CREATE UNIQUE INDEX ux_email_codes_user_purpose ON email_codes (user_id, purpose)",
    "CREATE TABLE signing_keys (
        kid VARCHAR(64) NOT NULL PRIMARY KEY,
        state VARCHAR(16) NOT NULL,
        active_marker {int} NULL,
        public_key VARCHAR(64) NOT NULL,
        private_key_enc TEXT NOT NULL,
        created_at {ts} NOT NULL,
        activates_at {ts} NOT NULL,
        retired_at {ts} NULL
    ){engine}",
    "CREATE UNIQUE INDEX ux_signing_keys_active ON signing_keys (active_marker)",
    "CREATE INDEX ix_signing_keys_state ON signing_keys (state, activates_at)",
    "CREATE TABLE mail_outbox (
        id {id} NOT NULL PRIMARY KEY,
        to_address VARCHAR(255) NOT NULL,
        template VARCHAR(64) NOT NULL,
        locale VARCHAR(8) NOT NULL,
        params TEXT NOT NULL,
        status VARCHAR(16) NOT NULL,
        attempts {int} NOT NULL,
        next_attempt_at {ts} NOT NULL,
        locked_until {ts} NULL,
        last_error VARCHAR(500) NULL,
        created_at {ts} NOT NULL,
        sent_at {ts} NULL
    ){engine}",
    "CREATE INDEX ix_mail_outbox_due ON mail_outbox (status, next_attempt_at)",
    "CREATE TABLE audit_log (
        id {id} NOT NULL PRIMARY KEY,
        actor_user_id {id} NULL,
        action VARCHAR(64) NOT NULL,
        target_type VARCHAR(32) NOT NULL,
        target_id VARCHAR(64) NULL,
        ip VARCHAR(45) NULL,
        detail TEXT NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_audit_log_target ON audit_log (target_type, target_id, created_at)",
    "CREATE INDEX ix_audit_log_actor ON audit_log (actor_user_id, created_at)",
];

#[async_trait::async_trait]
impl MigrationTrait for Foundation {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, FOUNDATION).await
    }
}

/// Sign-in attempts, IP blocks and security events.
struct Security;

impl MigrationName for Security {
    fn name(&self) -> &str {
        "m0002_security"
    }
}

const SECURITY: &[&str] = &[
    "CREATE TABLE login_attempts (
        id {id} NOT NULL PRIMARY KEY,
        user_id {id} NULL,
        email_normalized VARCHAR(255){bin} NULL,
        ip VARCHAR(45) NULL,
        ip_prefix VARCHAR(45) NULL,
        user_agent VARCHAR(512) NULL,
        method VARCHAR(32) NOT NULL,
        result VARCHAR(32) NOT NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_login_attempts_user ON login_attempts (user_id, created_at)",
    "CREATE INDEX ix_login_attempts_ip ON login_attempts (ip, created_at)",
    "CREATE INDEX ix_login_attempts_prefix ON login_attempts (user_id, ip_prefix, result)",
    "CREATE INDEX ix_login_attempts_email ON login_attempts (email_normalized, created_at)",
    "CREATE TABLE ip_blocks (
        id {id} NOT NULL PRIMARY KEY,
        cidr VARCHAR(64) NOT NULL,
        reason VARCHAR(255) NOT NULL,
        source VARCHAR(16) NOT NULL,
        created_by {id} NULL,
        created_at {ts} NOT NULL,
        expires_at {ts} NULL,
        deleted_at {ts} NULL
    ){engine}",
    "CREATE INDEX ix_ip_blocks_live ON ip_blocks (deleted_at, expires_at)",
    "CREATE TABLE security_events (
        id {id} NOT NULL PRIMARY KEY,
        kind VARCHAR(48) NOT NULL,
        severity VARCHAR(16) NOT NULL,
        user_id {id} NULL,
        ip VARCHAR(45) NULL,
        detail TEXT NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_security_events_time ON security_events (created_at)",
    "CREATE INDEX ix_security_events_kind ON security_events (kind, created_at)",
    "CREATE INDEX ix_security_events_user ON security_events (user_id, created_at)",
];

#[async_trait::async_trait]
impl MigrationTrait for Security {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, SECURITY).await
    }
}

/// Events, performances, products, variants, shipping, packages, stock, seats.
struct Catalog;

impl MigrationName for Catalog {
    fn name(&self) -> &str {
        "m0004_catalog"
    }
}

const CATALOG: &[&str] = &[
    "CREATE TABLE events (
        id {id} NOT NULL PRIMARY KEY,
        organizer_id {id} NOT NULL,
        title VARCHAR(255) NOT NULL,
        description TEXT NULL,
        start_at {ts} NOT NULL,
        end_at {ts} NOT NULL,
        timezone VARCHAR(64) NOT NULL,
        currency CHAR(3) NOT NULL,
        venue_name VARCHAR(255) NULL,
        venue_address VARCHAR(500) NULL,
        sale_open_at {ts} NOT NULL,
        sale_close_at {ts} NOT NULL,
        image_url VARCHAR(1000) NULL,
        order_hold_seconds {int} NOT NULL,
        cancel_policy TEXT NOT NULL,
        total_tickets {int} NOT NULL,
        status VARCHAR(16) NOT NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL,
        CONSTRAINT fk_events_organizer FOREIGN KEY (organizer_id) REFERENCES users (id)
    ){engine}",
    "CREATE INDEX ix_events_listing ON events (status, start_at, id)",
    "CREATE INDEX ix_events_organizer ON events (organizer_id, start_at, id)",
    "CREATE INDEX ix_events_end ON events (status, end_at)",
    "CREATE TABLE performances (
        id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        start_at {ts} NOT NULL,
        doors_open_at {ts} NULL,
        capacity {int} NOT NULL,
        per_user_limit {int} NULL,
        layout_version {int} NOT NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_performances_event ON performances (event_id, start_at)",
    "CREATE TABLE stock_counters (
        id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        remaining BIGINT NOT NULL
    ){engine}",
    "CREATE INDEX ix_stock_counters_event ON stock_counters (event_id)",
    "CREATE TABLE stock_movements (
        id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        stock_id {id} NOT NULL,
        order_id {id} NULL,
        kind VARCHAR(16) NOT NULL,
        delta BIGINT NOT NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_stock_movements_stock ON stock_movements (stock_id)",
    "CREATE INDEX ix_stock_movements_event ON stock_movements (event_id, created_at)",
    "CREATE INDEX ix_stock_movements_order ON stock_movements (order_id)",
    "CREATE TABLE products (
        id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        performance_id {id} NULL,
        type VARCHAR(16) NOT NULL,
        kind VARCHAR(16) NULL,
        name VARCHAR(255) NOT NULL,
        description TEXT NULL,
        price BIGINT NOT NULL,
        quantity {int} NOT NULL,
        grade VARCHAR(32) NULL,
        seating VARCHAR(16) NULL,
        stock_id {id} NULL,
        sale_open_at {ts} NULL,
        sale_close_at {ts} NULL,
        per_user_limit {int} NULL,
        per_order_limit {int} NULL,
        status VARCHAR(16) NOT NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_products_event ON products (event_id, type, created_at)",
    "CREATE INDEX ix_products_performance ON products (performance_id, grade)",
    "CREATE TABLE product_variants (
        id {id} NOT NULL PRIMARY KEY,
        product_id {id} NOT NULL,
        event_id {id} NOT NULL,
        name VARCHAR(100) NOT NULL,
        sku VARCHAR(64) NOT NULL,
        quantity {int} NOT NULL,
        stock_id {id} NOT NULL,
        preorder_limit {int} NULL,
        preorder_stock_id {id} NULL,
        expected_ship_date VARCHAR(10) NULL,
        position {int} NOT NULL
    ){engine}",
    "CREATE INDEX ix_product_variants_product ON product_variants (product_id, position)",
    "CREATE UNIQUE INDEX ux_product_variants_sku ON product_variants (event_id, sku)",
    "CREATE TABLE shipping_options (
        id {id} NOT NULL PRIMARY KEY,
        product_id {id} NOT NULL,
        event_id {id} NOT NULL,
        kind VARCHAR(16) NOT NULL,
        name VARCHAR(100) NOT NULL,
        fee BIGINT NOT NULL,
        position {int} NOT NULL
    ){engine}",
    "CREATE INDEX ix_shipping_options_product ON shipping_options (product_id, position)",
    "CREATE TABLE package_components (
        id {id} NOT NULL PRIMARY KEY,
        package_id {id} NOT NULL,
        event_id {id} NOT NULL,
        component_product_id {id} NOT NULL,
        component_variant_id {id} NULL,
        quantity {int} NOT NULL
    ){engine}",
    "CREATE INDEX ix_package_components_package ON package_components (package_id)",
    "CREATE INDEX ix_package_components_component ON package_components (component_product_id)",
    "CREATE TABLE seats (
        id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        performance_id {id} NOT NULL,
        label VARCHAR(64) NOT NULL,
        section VARCHAR(64) NOT NULL,
        row_label VARCHAR(16) NOT NULL,
        seat_label VARCHAR(16) NOT NULL,
        grade VARCHAR(32) NOT NULL,
        x {int} NOT NULL,
        y {int} NOT NULL,
        position {int} NOT NULL,
        state VARCHAR(16) NOT NULL,
        order_id {id} NULL,
        updated_at {ts} NOT NULL
    ){engine}",
    "CREATE UNIQUE INDEX ux_seats_label ON seats (performance_id, label)",
    "CREATE INDEX ix_seats_position ON seats (performance_id, position)",
    "CREATE INDEX ix_seats_grade ON seats (performance_id, grade, state)",
    "CREATE INDEX ix_seats_order ON seats (order_id)",
    "CREATE TABLE seat_layouts (
        performance_id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        version {int} NOT NULL,
        seat_count {int} NOT NULL,
        document {doc} NOT NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE TABLE notify_requests (
        id {id} NOT NULL PRIMARY KEY,
        product_id {id} NOT NULL,
        event_id {id} NOT NULL,
        user_id {id} NOT NULL,
        created_at {ts} NOT NULL,
        notified_at {ts} NULL
    ){engine}",
    "CREATE UNIQUE INDEX ux_notify_requests_user ON notify_requests (product_id, user_id)",
    "CREATE INDEX ix_notify_requests_pending ON notify_requests (product_id, notified_at, created_at)",
];

#[async_trait::async_trait]
impl MigrationTrait for Catalog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, CATALOG).await
    }
}

/// Indexes for the administrator's lists (newest first, keyset on `(created_at, id)`) and the
/// per-address guard of the automatic IP block.
struct Admin;

impl MigrationName for Admin {
    fn name(&self) -> &str {
        "m0003_admin"
    }
}

const ADMIN: &[&str] = &[
    "CREATE INDEX ix_users_created ON users (created_at, id)",
    "CREATE INDEX ix_audit_log_time ON audit_log (created_at, id)",
    "CREATE INDEX ix_audit_log_target_id ON audit_log (target_id, created_at)",
    "CREATE INDEX ix_audit_log_action ON audit_log (action, created_at)",
    "CREATE INDEX ix_security_events_ip ON security_events (ip, created_at)",
    "CREATE INDEX ix_ip_blocks_created ON ip_blocks (created_at, id)",
    "CREATE TABLE ip_auto_blocks (
        ip VARCHAR(45) NOT NULL PRIMARY KEY,
        blocked_until {ts} NOT NULL,
        updated_at {ts} NOT NULL
    ){engine}",
];

#[async_trait::async_trait]
impl MigrationTrait for Admin {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, ADMIN).await
    }
}

/// Seat maps: an index answering "which seats are not available" from the index alone, so the
/// per-second state snapshot of a 50,000-seat performance reads only the taken seats.
struct Seats;

impl MigrationName for Seats {
    fn name(&self) -> &str {
        "m0005_seats"
    }
}

const SEATS: &[&str] = &["CREATE INDEX ix_seats_state ON seats (performance_id, state, position)"];

#[async_trait::async_trait]
impl MigrationTrait for Seats {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, SEATS).await
    }
}

/// Orders, their lines, tickets, per-user purchase counters, idempotency keys, payments,
/// refunds, event cancellations and check-in staff. Every table carries `event_id` so an
/// event's orders can live on one shard; no foreign key crosses events except to `users`.
struct Orders;

impl MigrationName for Orders {
    fn name(&self) -> &str {
        "m0006_orders"
    }
}

const ORDERS: &[&str] = &[
    "CREATE TABLE orders (
        id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        user_id {id} NOT NULL,
        status VARCHAR(16) NOT NULL,
        currency CHAR(3) NOT NULL,
        subtotal BIGINT NOT NULL,
        shipping_fee BIGINT NOT NULL,
        total BIGINT NOT NULL,
        cancel_policy TEXT NOT NULL,
        shipping_address TEXT NULL,
        expires_at {ts} NOT NULL,
        payment_provider VARCHAR(32) NULL,
        payment_ref VARCHAR(128) NULL,
        paid_amount BIGINT NULL,
        cancel_reason VARCHAR(16) NULL,
        cancel_note VARCHAR(500) NULL,
        cancel_fee BIGINT NULL,
        refund_amount BIGINT NULL,
        confirmed_at {ts} NULL,
        canceled_at {ts} NULL,
        refunded_at {ts} NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL,
        CONSTRAINT fk_orders_user FOREIGN KEY (user_id) REFERENCES users (id)
    ){engine}",
    "CREATE INDEX ix_orders_user ON orders (user_id, created_at, id)",
    "CREATE INDEX ix_orders_event ON orders (event_id, created_at, id)",
    "CREATE INDEX ix_orders_event_status ON orders (event_id, status)",
    "CREATE INDEX ix_orders_expiry ON orders (status, expires_at)",
    "CREATE TABLE order_items (
        id {id} NOT NULL PRIMARY KEY,
        order_id {id} NOT NULL,
        event_id {id} NOT NULL,
        position {int} NOT NULL,
        kind VARCHAR(16) NOT NULL,
        product_id {id} NULL,
        variant_id {id} NULL,
        performance_id {id} NULL,
        shipping_option_id {id} NULL,
        name VARCHAR(255) NOT NULL,
        quantity {int} NOT NULL,
        unit_price BIGINT NOT NULL,
        price BIGINT NOT NULL,
        preorder BOOLEAN NOT NULL,
        seats TEXT NULL,
        fulfillment VARCHAR(16) NULL,
        carrier VARCHAR(64) NULL,
        tracking_number VARCHAR(128) NULL,
        fulfilled_at {ts} NULL
    ){engine}",
    "CREATE INDEX ix_order_items_order ON order_items (order_id, position)",
    "CREATE INDEX ix_order_items_product ON order_items (event_id, product_id)",
    "CREATE TABLE tickets (
        id {id} NOT NULL PRIMARY KEY,
        event_id {id} NOT NULL,
        order_id {id} NOT NULL,
        order_item_id {id} NOT NULL,
        product_id {id} NOT NULL,
        performance_id {id} NULL,
        seat_id {id} NULL,
        seat_label VARCHAR(64) NULL,
        code VARCHAR(64) NOT NULL,
        status VARCHAR(16) NOT NULL,
        used_at {ts} NULL,
        checked_in_by {id} NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE UNIQUE INDEX ux_tickets_code ON tickets (code)",
    "CREATE INDEX ix_tickets_order ON tickets (order_id)",
    "CREATE INDEX ix_tickets_event ON tickets (event_id, status)",
    "CREATE TABLE purchase_counts (
        scope_id VARCHAR(80) NOT NULL,
        user_id {id} NOT NULL,
        event_id {id} NOT NULL,
        quantity {int} NOT NULL,
        PRIMARY KEY (scope_id, user_id)
    ){engine}",
    "CREATE TABLE idempotency_keys (
        id {id} NOT NULL PRIMARY KEY,
        user_id {id} NOT NULL,
        route VARCHAR(80) NOT NULL,
        idem_key VARCHAR(255){bin} NOT NULL,
        request_hash CHAR(64) NOT NULL,
        status_code {int} NULL,
        response {doc} NULL,
        created_at {ts} NOT NULL,
        expires_at {ts} NOT NULL
    ){engine}",
    "CREATE UNIQUE INDEX ux_idempotency_keys_key ON idempotency_keys (user_id, route, idem_key)",
    "CREATE INDEX ix_idempotency_keys_expiry ON idempotency_keys (expires_at)",
    "CREATE TABLE payments (
        id {id} NOT NULL PRIMARY KEY,
        order_id {id} NOT NULL,
        event_id {id} NOT NULL,
        provider VARCHAR(32) NOT NULL,
        amount BIGINT NOT NULL,
        status VARCHAR(16) NOT NULL,
        provider_ref VARCHAR(128) NULL,
        failure_code VARCHAR(64) NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_payments_order ON payments (order_id, created_at)",
    "CREATE TABLE refunds (
        id {id} NOT NULL PRIMARY KEY,
        order_id {id} NOT NULL,
        event_id {id} NOT NULL,
        provider VARCHAR(32) NULL,
        provider_ref VARCHAR(128) NULL,
        amount BIGINT NOT NULL,
        fee BIGINT NOT NULL,
        reason VARCHAR(32) NOT NULL,
        status VARCHAR(16) NOT NULL,
        attempts {int} NOT NULL,
        next_attempt_at {ts} NOT NULL,
        last_error VARCHAR(255) NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL
    ){engine}",
    "CREATE UNIQUE INDEX ux_refunds_order ON refunds (order_id)",
    "CREATE INDEX ix_refunds_due ON refunds (status, next_attempt_at)",
    "CREATE INDEX ix_refunds_event ON refunds (event_id, status)",
    "CREATE TABLE event_cancellations (
        event_id {id} NOT NULL PRIMARY KEY,
        reason VARCHAR(500) NOT NULL,
        requested_by {id} NOT NULL,
        status VARCHAR(16) NOT NULL,
        orders_total {int} NOT NULL,
        orders_done {int} NOT NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL
    ){engine}",
    "CREATE TABLE check_in_staff (
        event_id {id} NOT NULL,
        user_id {id} NOT NULL,
        created_at {ts} NOT NULL,
        PRIMARY KEY (event_id, user_id)
    ){engine}",
];

#[async_trait::async_trait]
impl MigrationTrait for Orders {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, ORDERS).await
    }
}

/// The waiting room's per-event settings and VIP list (the queue itself lives in Redis or in
/// process). `vip_share` is stored in basis points so it compares exactly.
struct Queues;

impl MigrationName for Queues {
    fn name(&self) -> &str {
        "m0007_queues"
    }
}

const QUEUES: &[&str] = &[
    "CREATE TABLE event_queues (
        event_id {id} NOT NULL PRIMARY KEY,
        enabled BOOLEAN NOT NULL,
        capacity {int} NOT NULL,
        admit_per_second {int} NOT NULL,
        admission_ttl_seconds {int} NOT NULL,
        pre_queue_opens_at {ts} NULL,
        vip_share_bp {int} NOT NULL,
        heartbeat_timeout_seconds {int} NOT NULL,
        max_joins_per_ip {int} NULL,
        paused BOOLEAN NOT NULL,
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_event_queues_enabled ON event_queues (enabled)",
    "CREATE TABLE event_queue_vips (
        event_id {id} NOT NULL,
        user_id {id} NOT NULL,
        created_at {ts} NOT NULL,
        PRIMARY KEY (event_id, user_id)
    ){engine}",
];

#[async_trait::async_trait]
impl MigrationTrait for Queues {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, QUEUES).await
    }
}

/// OAuth identities, passkeys and short-lived sign-in ceremonies.
struct Identities;

impl MigrationName for Identities {
    fn name(&self) -> &str {
        "m0008_identities"
    }
}

const IDENTITIES: &[&str] = &[
    "CREATE TABLE user_identities (
        id {id} NOT NULL PRIMARY KEY,
        user_id {id} NOT NULL,
        provider VARCHAR(16) NOT NULL,
        subject VARCHAR(255){bin} NOT NULL,
        email VARCHAR(255) NULL,
        email_verified BOOLEAN NOT NULL,
        refresh_token_enc TEXT NULL,
        created_at {ts} NOT NULL,
        last_used_at {ts} NULL,
        CONSTRAINT fk_user_identities_user FOREIGN KEY (user_id) REFERENCES users (id)
    ){engine}",
    "CREATE UNIQUE INDEX ux_user_identities_subject ON user_identities (provider, subject)",
    "CREATE INDEX ix_user_identities_user ON user_identities (user_id)",
    "CREATE TABLE webauthn_credentials (
        id {id} NOT NULL PRIMARY KEY,
        user_id {id} NOT NULL,
        credential_id_hash CHAR(64) NOT NULL,
        credential_id TEXT NOT NULL,
        name VARCHAR(100) NOT NULL,
        passkey {doc} NOT NULL,
        sign_count BIGINT NOT NULL,
        authenticator_type VARCHAR(16) NOT NULL,
        created_at {ts} NOT NULL,
        last_used_at {ts} NULL,
        CONSTRAINT fk_webauthn_credentials_user FOREIGN KEY (user_id) REFERENCES users (id)
    ){engine}",
    "CREATE UNIQUE INDEX ux_webauthn_credentials_credential ON webauthn_credentials (credential_id_hash)",
    "CREATE INDEX ix_webauthn_credentials_user ON webauthn_credentials (user_id)",
    "CREATE TABLE auth_ceremonies (
        id CHAR(64) NOT NULL PRIMARY KEY,
        kind VARCHAR(32) NOT NULL,
        user_id {id} NULL,
        data {doc} NOT NULL,
        expires_at {ts} NOT NULL,
        created_at {ts} NOT NULL
    ){engine}",
    "CREATE INDEX ix_auth_ceremonies_expiry ON auth_ceremonies (expires_at)",
];

#[async_trait::async_trait]
impl MigrationTrait for Identities {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, IDENTITIES).await
    }
}

/// Indexes for deleting finished mail by age and by address.
struct MailRetention;

impl MigrationName for MailRetention {
    fn name(&self) -> &str {
        "m0009_mail_retention"
    }
}

const MAIL_RETENTION: &[&str] = &[
    "CREATE INDEX ix_mail_outbox_finished ON mail_outbox (status, sent_at)",
    "CREATE INDEX ix_mail_outbox_address ON mail_outbox (to_address)",
];

#[async_trait::async_trait]
impl MigrationTrait for MailRetention {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply(manager, MAIL_RETENTION).await
    }
}
