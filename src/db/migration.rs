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
        vec![Box::new(Foundation), Box::new(Security), Box::new(Admin)]
    }
}

/// Writes one DDL template for the connected backend.
///
/// Placeholders: `{id}` ids, `{ts}` timestamps, `{bin}` byte-wise collation,
/// `{engine}` table options, `{int}` 32-bit integers.
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
