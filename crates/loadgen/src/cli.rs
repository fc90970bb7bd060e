//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Load generator for boxoffice and for the ceilings of the machine it runs on.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    /// Scenario to run.
    #[arg(value_enum)]
    pub scenario: ScenarioName,

    /// Base URL of a boxoffice instance; give several to spread virtual users round-robin.
    #[arg(long = "target", value_name = "URL", num_args = 1..)]
    pub targets: Vec<String>,

    /// Virtual users: concurrent request loops (closed model) or the cap on requests in flight (open model).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub users: u32,

    /// Seconds measured in each phase, after the warm-up.
    #[arg(long, value_name = "S", default_value = "10", value_parser = positive_seconds)]
    pub duration: Duration,

    /// Seconds run before measuring in each phase; excluded from results.
    #[arg(long, value_name = "S", default_value = "2", value_parser = seconds)]
    pub warmup: Duration,

    /// Open model: start R requests per second at fixed intervals whatever the latency; without it, closed model.
    #[arg(long, value_name = "R", value_parser = positive_rate)]
    pub rate: Option<f64>,

    /// Seconds after which a request with no answer counts as a transport error.
    #[arg(long, value_name = "S", default_value = "10", value_parser = positive_seconds)]
    pub timeout: Duration,

    /// JSON-lines file of seeded users and their tokens (from `boxoffice bench seed`).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,

    /// Auth phases to run one after another, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "me")]
    pub mix: Vec<AuthMix>,

    /// Redis for the calibrate scenario.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// MariaDB server for the calibrate scenario (a scratch database is created and dropped).
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
    pub mysql_url: String,

    /// File holding an organizer's access token (the seats scenario creates its event with it;
    /// a file, so the token stays out of the report's command line).
    #[arg(long, value_name = "FILE")]
    pub organizer_token_file: Option<PathBuf>,

    /// Measure this existing seat map (`/events/{id}/performances/{pid}/seats`, published)
    /// instead of creating one.
    #[arg(long, value_name = "PATH")]
    pub seats_path: Option<String>,

    /// Seats in the map the seats scenario creates.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub seats: u32,

    /// sell-out: units of the one general-admission ticket product on sale.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub tickets: u32,

    /// sell-out: buyers, one line of --tokens each, each making exactly one attempt.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub buyers: u32,

    /// sell-out: the server's database (its DATABASE_URL: mysql://, mariadb:// or sqlite:),
    /// read after the run to check that nothing was oversold.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// sell-out: run the calibrate phases first, so the report sets confirmed orders/s against
    /// this machine's hot-row UPDATE ceiling measured in the same run.
    #[arg(long)]
    pub with_calibrate: bool,

    /// sell-out with --with-calibrate: workers (and MariaDB connections) of the calibrate phases.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub calibrate_users: u32,

    /// queue-burst: `redis-benchmark -t zadd` requests/s measured in the same run (the ceiling
    /// the join rate is set against).
    #[arg(long, value_name = "OPS")]
    pub zadd_ceiling: Option<f64>,

    /// queue-burst: waiting users to hold (the HTTP joiners plus synthetic ones added through
    /// the server's Redis backend) before Redis memory is read; 0 skips it.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub hold_waiters: u32,

    /// queue-burst, ws-fanout: the server's Redis key prefix (the run's queue is removed at the end).
    #[arg(long, default_value = "bo:")]
    pub redis_prefix: String,

    /// queue-burst: leave the run's queue (and the held waiters) in Redis after the run.
    #[arg(long)]
    pub keep_waiters: bool,

    /// ws-fanout, soak: the server's process id, for its resident memory.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// ws-fanout: loopback source addresses (127.0.0.2 …) the sockets are spread over.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=250))]
    pub source_addresses: u8,

    /// ws-fanout: open the sockets as HTTP/2 streams (RFC 8441), this many on each connection,
    /// as a load balancer does upstream; 0 = one HTTP/1.1 connection per socket. The server
    /// allows 200 streams per connection.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=200))]
    pub ws_http2_streams: u16,

    /// ws-fanout with `--ws-http2-streams`: open this many of the sockets over HTTP/1.1 (one
    /// connection each) and the rest as HTTP/2 streams, both kinds in the same wave.
    #[arg(long, value_name = "N")]
    pub ws_http1_sockets: Option<usize>,

    /// Directory the JSON and Markdown reports are written to.
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    pub out: PathBuf,
}

/// The scenarios loadgen knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    /// Ceilings of this machine: Redis, MariaDB hot row, bare axum.
    Calibrate,
    /// Authentication endpoints of a running boxoffice.
    Auth,
    /// Seat-map documents of a generated stadium on a running boxoffice.
    Seats,
    /// Anonymous catalog reads: the event list, a product, a stadium's seat state.
    Catalog,
    /// A ticket opening: buyers race for general-admission tickets, each creating, paying and
    /// confirming one order; then the database is checked for oversell.
    SellOut,
    /// The waiting room under a burst: distinct buyers join, then poll their status; Redis
    /// memory holding a million waiters.
    QueueBurst,
    /// One admission wave pushed to many WebSockets; the server's memory.
    WsFanout,
    /// Mixed traffic for a long time (reads, own orders, orders placed and canceled): throughput,
    /// p99 and the server's memory over time, charted.
    Soak,
}

impl ScenarioName {
    /// Name used in reports and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calibrate => "calibrate",
            Self::Auth => "auth",
            Self::Seats => "seats",
            Self::Catalog => "catalog",
            Self::SellOut => "sell-out",
            Self::QueueBurst => "queue-burst",
            Self::WsFanout => "ws-fanout",
            Self::Soak => "soak",
        }
    }
}

/// One phase of the auth scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMix {
    /// `GET /auth/me` with a bearer access token.
    Me,
    /// `POST /auth/refresh`, keeping each rotated refresh token.
    Refresh,
    /// `POST /auth/login` with email and password.
    Login,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|e| format!("{text:?} is not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(value)
        .map_err(|e| format!("{text:?} is not a usable number of seconds: {e}"))
}

fn positive_seconds(text: &str) -> Result<Duration, String> {
    let duration = seconds(text)?;
    if duration.is_zero() {
        return Err("must be more than zero seconds".to_owned());
    }
    Ok(duration)
}

fn positive_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|e| format!("{text:?} is not a rate: {e}"))?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err("must be a positive number of requests per second".to_owned());
    }
    Ok(rate)
}
