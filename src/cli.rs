//! The command line: `serve`, `migrate`, `user create`, `keys rotate`, `bench seed`.

use std::{io::Write, path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{
    app::{self, Application, BuildOptions},
    auth::{
        model::{Email, Locale, Role},
        sessions::{self, ClientMeta},
        users::{self, NewUser},
    },
    config::{Config, LogFormat},
    db,
    infra::{
        clock::{Clock, SystemClock},
        rng::OsRng,
    },
};

/// boxoffice: tickets, merchandise and packages with a fair waiting room.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: ./boxoffice.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP service.
    Serve {
        /// Seeds demo accounts and logs mail instead of sending it.
        #[arg(long)]
        demo: bool,
    },
    /// Applies pending database migrations and exits.
    Migrate,
    /// Manages accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manages token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Recomputes remaining stock from the movement ledger and reports any difference
    /// (exit status 1 when there is one).
    AuditStock {
        /// Only this event.
        #[arg(long)]
        event: Option<String>,
    },
    /// Benchmark helpers (need BENCH_MODE=true).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Creates a verified account.
    Create {
        /// Address.
        #[arg(long)]
        email: String,
        /// Password (10–128 characters).
        #[arg(long)]
        password: String,
        /// USER, ORGANIZER or ADMIN (any case).
        #[arg(long, default_value = "USER")]
        role: Role,
        /// Puts the account in the VIP lane.
        #[arg(long)]
        vip: bool,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Adds a new signing key: published at once, signing after 5 minutes.
    Rotate,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Creates verified users and writes their tokens as JSON lines (no Argon2 per user).
    Seed {
        /// How many users.
        #[arg(long)]
        users: u32,
        /// Output file.
        #[arg(long, default_value = "tokens.jsonl")]
        out: PathBuf,
    },
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        // Colours only for a person at a terminal, not in files or the journal.
        LogFormat::Text => registry
            .with(fmt::layer().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())))
            .init(),
        LogFormat::Json => registry.with(fmt::layer().json()).init(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => serve(config, demo).await,
        Command::Migrate => {
            let db = db::connect(&config.database_url, config.database_pool_max).await?;
            db::migration::run(&db, &config.database_url).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    password,
                    role,
                    vip,
                    name,
                },
        } => create_user(config, email, password, role, vip, name).await,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let state = {
                let options = one_shot(&config);
                app::build_state(config, options)
            }
            .await?;
            let kid = crate::auth::keys::rotate(
                &state.db,
                &state.secrets,
                state.rng.as_ref(),
                state.clock.now(),
            )
            .await?;
            println!("added signing key {kid}: published now, signing in 5 minutes");
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Seed { users, out },
        } => bench_seed(config, users, out).await,
        Command::AuditStock { event } => audit_stock(config, event).await,
    }
}

async fn audit_stock(config: Config, event: Option<String>) -> anyhow::Result<()> {
    let db = db::connect(&config.database_url, config.database_pool_max).await?;
    let found = crate::orders::audit::differences(&db, event.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("audit failed: {e}"))?;
    for d in &found {
        println!(
            "event {} {}: stored {}, expected {}",
            d.event_id, d.subject, d.stored, d.expected
        );
    }
    if found.is_empty() {
        println!("stock consistent: every counter equals its ledger, every seat its order");
        Ok(())
    } else {
        anyhow::bail!("{} difference(s) found", found.len())
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    crate::queue::raise_open_file_limit();
    tracing::info!(
        listen = %config.listen,
        public_url = %config.public_url,
        database = %config.database_url,
        redis = ?config.redis_url.as_ref().map(ToString::to_string),
        smtp = ?config.smtp_url.as_ref().map(ToString::to_string),
        demo,
        "starting"
    );
    let key_prefix = config.redis_key_prefix.clone();
    let app = Application::build(
        config,
        BuildOptions {
            demo,
            key_prefix,
            ..BuildOptions::default()
        },
    )
    .await?;
    if demo {
        crate::demo::seed(app.state()).await?;
    }
    let addr = app.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("boxoffice listening on http://{addr}  (API docs: http://{addr}/docs)");
    // Draining is bounded: a client that never lets its connection go (an HTTP/2 proxy keeping
    // a connection open, a stalled reader) must not keep a stopping instance alive.
    let (signalled, on_signal) = tokio::sync::oneshot::channel();
    let run = app.run_until(async move {
        shutdown_signal().await;
        let _ = signalled.send(());
    });
    tokio::select! {
        result = run => result?,
        _ = async {
            match on_signal.await {
                Ok(()) => tokio::time::sleep(DRAIN_LIMIT).await,
                Err(_) => std::future::pending().await,
            }
        } => tracing::warn!(
            limit_seconds = DRAIN_LIMIT.as_secs(),
            "connections still open after the drain limit; stopping anyway"
        ),
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping instance waits for open connections after the shutdown signal.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Options of a command that does its work and exits: no background workers.
fn one_shot(config: &Config) -> BuildOptions {
    BuildOptions {
        background: false,
        key_prefix: config.redis_key_prefix.clone(),
        ..BuildOptions::default()
    }
}

async fn create_user(
    config: Config,
    email: String,
    password: String,
    role: Role,
    vip: bool,
    name: Option<String>,
) -> anyhow::Result<()> {
    let state = {
        let options = one_shot(&config);
        app::build_state(config, options)
    }
    .await?;
    let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("email {}", e.message))?;
    state
        .passwords
        .check_policy(&password, email.normalized())
        .map_err(|e| anyhow::anyhow!("password {}", e.message))?;
    let hash = state
        .passwords
        .hash(state.rng.clone(), password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = users::insert(
        &state.db,
        state.clock.now(),
        NewUser {
            email: &email,
            password_hash: Some(hash),
            name,
            nickname: None,
            locale: Locale::Ko,
            role,
            vip,
            verified: true,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("created {} {} ({})", role.as_str(), email.as_str(), user.id);
    Ok(())
}

async fn bench_seed(config: Config, count: u32, out: PathBuf) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.bench_mode,
        "bench seed needs BOXOFFICE_BENCH_MODE=true"
    );
    let state = {
        let options = one_shot(&config);
        app::build_state(config, options)
    }
    .await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let password = "bench-password-2026".to_owned();
    // One hash shared by every bench user: seeding must not take 18 ms per user.
    let hash = state
        .passwords
        .hash(Arc::new(OsRng), password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let run = &run[run.len() - 8..];
    for i in 0..count {
        let now = clock.now();
        let email = Email::parse(&format!("bench-{run}-{i}@bench.boxoffice.local"))
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let user = users::insert(
            &state.db,
            now,
            NewUser {
                email: &email,
                password_hash: Some(hash.clone()),
                name: Some(format!("bench {i}")),
                nickname: None,
                locale: Locale::Ko,
                role: Role::User,
                vip: false,
                verified: true,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (family, refresh) = sessions::start(
            &state.db,
            state.rng.as_ref(),
            now,
            &user.id,
            sessions::kind::REFRESH,
            "BENCH",
            &ClientMeta::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let access = state
            .tokens
            .issue(&user.id, &family, Role::User, false, now)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let line = serde_json::json!({
            "user_id": user.id,
            "email": email.as_str(),
            "password": password,
            "access_token": access,
            "refresh_token": refresh,
        });
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    println!("wrote {count} users to {}", out.display());
    Ok(())
}
