//! Application state and assembly: `Application::build(config)` → a bound listener and router.

use std::{future::Future, net::SocketAddr, ops::Deref, sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit, middleware};
use ipnet::IpNet;
use moka::sync::Cache;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use tokio::{net::TcpListener, sync::Notify};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    auth::{
        deletion::LiveOrders,
        keys::KeyRing,
        password::PasswordHasher,
        sessions::{self, CookieSession, RevokedSessions},
        tokens::{ACCESS_TTL_SECONDS, Tokens},
    },
    config::Config,
    db::{self, entities::settings},
    http::middleware as mw,
    infra::{
        bus::{self, Bus},
        clock::{Clock, SystemClock, to_db},
        mail::worker::{MailWorker, Transport},
        metrics,
        ratelimit::Limits,
        redis::RedisHandle,
        rng::{OsRng, Rng},
        secrets::{self, Secrets},
    },
};

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Everything a handler can reach. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// The shared application.
pub struct App {
    /// Configuration as loaded.
    pub config: Config,
    /// Primary database.
    pub db: DatabaseConnection,
    /// Anonymous catalog reads and organizer reports: the replica of `DATABASE_READ_URL`, else
    /// the primary. A buyer's own orders and anything written are never read here.
    pub read_db: DatabaseConnection,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Randomness source.
    pub rng: Arc<dyn Rng>,
    /// Keys derived from `SECRET_KEY`.
    pub secrets: Arc<Secrets>,
    /// Access tokens.
    pub tokens: Tokens,
    /// Session families revoked on any instance.
    pub revoked: RevokedSessions,
    /// Browser sessions recently looked up (by cookie hash).
    pub cookie_sessions: Cache<String, CookieSession>,
    /// Password hashing.
    pub passwords: PasswordHasher,
    /// Pub/sub between instances.
    pub bus: Bus,
    /// Redis, when configured.
    pub redis: Option<RedisHandle>,
    /// Wakes the mail worker after a commit that queued mail.
    pub mail_wake: Arc<Notify>,
    /// Parsed `TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<IpNet>,
    /// Blocked networks, held in process and refreshed through pub/sub.
    pub ip_blocks: crate::security::ip_blocks::IpBlockList,
    /// Demo mode (`serve --demo`).
    pub demo: bool,
    /// Asks the orders module whether an account may be deleted.
    pub live_orders: Arc<dyn LiveOrders>,
    /// Anonymous catalog reads, by URI.
    pub public_cache: crate::http::public_cache::PublicCache,
    /// Rate limits.
    pub limits: Limits,
    /// Seat-map documents (layouts and per-second state snapshots).
    pub seat_maps: crate::catalog::seats::SeatCache,
    /// Checkout admission and order lifecycle hooks (the waiting room plugs in here).
    pub order_hooks: crate::orders::hooks::Hooks,
    /// Checkout and payment settling by group commit.
    pub order_batches: crate::orders::batches::Batches,
    /// Catalog rows of recent checkouts (cleared with the public cache).
    pub checkout_catalog: crate::orders::checkout::CatalogCache,
    /// Payments started here and awaiting their confirmation.
    pub recent_payments: crate::orders::payment::recent::RecentPayments,
    /// Payment gateways (`test` is the default).
    pub payments: crate::orders::payment::Providers,
    /// The waiting room (storage backend, rules cache, sockets, ticker lease).
    pub queue: crate::queue::Queue,
    /// OAuth sign-in providers (Google, Naver, Kakao) that are configured.
    pub oauth: crate::auth::oauth::OAuth,
    /// The passkey relying party (from `PUBLIC_URL`).
    pub passkeys: crate::auth::webauthn::Passkeys,
}

/// What differs between a real start and a test: time, randomness, key prefix.
pub struct BuildOptions {
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Randomness source.
    pub rng: Arc<dyn Rng>,
    /// Prefix of Redis keys and channels.
    pub key_prefix: String,
    /// Demo mode.
    pub demo: bool,
    /// An in-process bus shared with other instances in this process (tests of
    /// several instances without Redis); ignored when Redis is configured.
    pub shared_bus: Option<Bus>,
    /// Starts the background workers (mail, sweepers, refunds, queue ticker); off for one-shot
    /// commands.
    pub background: bool,
    /// Replaces the live-orders hook (tests).
    pub live_orders: Option<Arc<dyn LiveOrders>>,
    /// Replaces the checkout and order lifecycle hooks.
    pub order_hooks: Option<crate::orders::hooks::Hooks>,
    /// A waiting-room backend shared with other instances in this process (tests of several
    /// instances without Redis); ignored when Redis is configured.
    pub shared_room: Option<Arc<dyn crate::queue::WaitingRoom>>,
    /// A socket the caller bound already (tests that must know the port before the start,
    /// because `PUBLIC_URL` names it); `LISTEN` is bound otherwise.
    pub listener: Option<std::net::TcpListener>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            rng: Arc::new(OsRng),
            key_prefix: "bo:".into(),
            demo: false,
            shared_bus: None,
            live_orders: None,
            order_hooks: None,
            shared_room: None,
            listener: None,
            background: true,
        }
    }
}

/// A built application: state, router and a bound listener.
pub struct Application {
    state: AppState,
    router: Router,
    listener: TcpListener,
}

impl Application {
    /// Connects, migrates, loads keys, starts background workers and binds the listener.
    pub async fn build(config: Config, mut options: BuildOptions) -> anyhow::Result<Self> {
        let bound = options.listener.take();
        let state = build_state(config, options).await?;
        let router = router(state.clone());
        let listener = match bound {
            Some(socket) => {
                socket.set_nonblocking(true)?;
                TcpListener::from_std(socket)?
            }
            None => TcpListener::bind(state.config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("LISTEN: cannot bind {}: {e}", state.config.listen))?,
        };
        Ok(Self {
            state,
            router,
            listener,
        })
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then closes queue sockets (so clients reconnect
    /// elsewhere) and finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let shutdown = async move {
            shutdown.await;
            state.queue.shut_down().await;
        };
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

impl App {
    /// The connection for a catalog read: the replica for anonymous readers, the primary for
    /// signed-in ones (who must see their own drafts and changes at once).
    pub fn catalog_reader(&self, anonymous: bool) -> &DatabaseConnection {
        if anonymous { &self.read_db } else { &self.db }
    }

    /// Tells every instance that public catalog data of an event changed, so cached reads are
    /// dropped now rather than at their expiry.
    pub async fn catalog_changed(&self, event_id: &str) {
        self.public_cache.invalidate_all();
        self.checkout_catalog.clear();
        if let Err(e) = self.bus.publish(crate::catalog::CHANGED, event_id).await {
            tracing::warn!(error = %e, "could not announce a catalog change; caches expire within a second");
        }
    }
}

/// Connects to everything and starts the background tasks.
pub async fn build_state(config: Config, options: BuildOptions) -> anyhow::Result<AppState> {
    let db = db::connect(&config.database_url, config.database_pool_max).await?;
    db::migration::run(&db, &config.database_url).await?;
    // The replica is migrated through replication, never by us.
    let read_db = match &config.database_read_url {
        Some(url) => db::connect(url, config.database_pool_max).await?,
        None => db.clone(),
    };
    let now = options.clock.now();
    let master = load_secret_key(&config, &db, options.rng.as_ref(), now).await?;
    let secrets = Arc::new(Secrets::derive(&master));
    let keys = Arc::new(match &config.jwt_key_file {
        Some(path) => KeyRing::from_pem_file(path)?,
        None => {
            KeyRing::from_database(db.clone(), secrets.clone(), options.rng.as_ref(), now).await?
        }
    });
    let redis = match &config.redis_url {
        Some(url) => Some(RedisHandle::connect(url, &options.key_prefix).await?),
        None => None,
    };
    let bus = match (&redis, options.shared_bus) {
        (Some(handle), _) => Bus::redis(handle.clone()),
        (None, Some(shared)) => shared,
        (None, None) => Bus::memory(),
    };
    let revoked = RevokedSessions::default();
    let since = now - time::Duration::seconds(ACCESS_TTL_SECONDS + 60);
    for family in sessions::recently_revoked(&db, since)
        .await
        .map_err(|e| anyhow::anyhow!("loading revoked sessions: {e}"))?
    {
        revoked.insert(&family);
    }
    let passwords = PasswordHasher::new(options.rng.as_ref())?;
    let transport =
        Transport::from_config(config.smtp_url.as_ref().map(|u| u.expose()), options.demo)?;
    let from = config
        .mail_from
        .parse()
        .map_err(|e| anyhow::anyhow!("MAIL_FROM: {e}"))?;
    let trusted_proxies = config
        .trusted_proxy_nets()
        .map_err(|e| anyhow::anyhow!("TRUSTED_PROXIES: {e}"))?;
    let mail_wake = Arc::new(Notify::new());
    let limits = Limits::new(&config, options.clock.clone(), redis.clone());
    let payments = crate::orders::payment::Providers::new(vec![Arc::new(
        crate::orders::payment::test_provider::TestProvider::new(secrets.test_payments),
    )]);
    let room = match (&redis, options.shared_room) {
        (None, Some(shared)) => shared,
        (redis, _) => crate::queue::build(redis.as_ref()),
    };
    let redis_for_queue = redis.clone();
    let challenge = crate::queue::challenge::configured(config.queue_pow_bits);
    let order_batches =
        crate::orders::batches::Batches::start(config.order_batch_max, config.order_batch_workers);
    let oauth = crate::auth::oauth::OAuth::from_config(&config)?;
    let passkeys = crate::auth::webauthn::Passkeys::from_config(&config);
    let state = AppState(Arc::new(App {
        oauth,
        passkeys,
        tokens: Tokens::new(keys.clone()),
        cookie_sessions: Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(60))
            .build(),
        config,
        db: db.clone(),
        read_db,
        clock: options.clock.clone(),
        rng: options.rng,
        secrets,
        revoked,
        passwords,
        bus,
        redis,
        mail_wake: mail_wake.clone(),
        trusted_proxies,
        ip_blocks: Default::default(),
        demo: options.demo,
        live_orders: options
            .live_orders
            .unwrap_or_else(|| Arc::new(crate::orders::live::LiveOrdersInDb)),
        public_cache: crate::http::public_cache::PublicCache::new(),
        limits,
        seat_maps: crate::catalog::seats::SeatCache::new(),
        order_hooks: options
            .order_hooks
            .unwrap_or_else(crate::queue::gate::hooks),
        payments,
        checkout_catalog: Default::default(),
        recent_payments: Default::default(),
        order_batches,
        queue: crate::queue::Queue::new(room, redis_for_queue, challenge),
    }));
    // Subscribe before the first load so a change made meanwhile still triggers a reload.
    let ip_block_changes = state.bus.subscribe();
    state
        .ip_blocks
        .reload(&state.db, now)
        .await
        .map_err(|e| anyhow::anyhow!("loading ip blocks: {e}"))?;
    // One-shot commands (`user create`, `keys rotate`, `bench seed`) must not
    // claim mails, refunds or the queue ticker's lease and then exit in the middle of them.
    if options.background {
        tokio::spawn(crate::security::ip_blocks::keep_fresh(
            state.clone(),
            ip_block_changes,
        ));
        tokio::spawn(
            MailWorker {
                db,
                clock: options.clock.clone(),
                transport,
                from,
                wake: mail_wake,
            }
            .run(),
        );
        tokio::spawn(listen_for_revocations(state.clone()));
        tokio::spawn(reload_keys_every_minute(keys, options.clock));
        tokio::spawn(crate::catalog::events::sweep_forever(state.clone()));
        tokio::spawn(crate::orders::expiry::sweep_forever(state.clone()));
        tokio::spawn(crate::orders::refunds::work_forever(state.clone()));
        tokio::spawn(crate::orders::event_cancel::work_forever(state.clone()));
        tokio::spawn(crate::infra::gauges::sample_forever(state.clone()));
        crate::queue::start(&state);
    }
    Ok(state)
}

/// Uses the configured `SECRET_KEY`, or the one stored in `settings`, generating it on first start.
async fn load_secret_key(
    config: &Config,
    db: &DatabaseConnection,
    rng: &dyn Rng,
    now: time::OffsetDateTime,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.secret_key {
        return secrets::decode_secret_key(secret.expose())
            .map_err(|e| anyhow::anyhow!("SECRET_KEY {e}"));
    }
    const NAME: &str = "secret_key";
    if let Some(row) = settings::Entity::find_by_id(NAME).one(db).await? {
        return secrets::decode_secret_key(&row.value)
            .map_err(|e| anyhow::anyhow!("stored secret_key {e}"));
    }
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    let inserted = settings::ActiveModel {
        name: Set(NAME.to_owned()),
        value: Set(secrets::encode_secret_key(&bytes)),
        created_at: Set(to_db(now)),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(bytes.to_vec()),
        // Another instance generated it first: use theirs.
        Err(e) if db::unique_violation(&e).is_some() => {
            let row = settings::Entity::find_by_id(NAME)
                .one(db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("secret_key vanished"))?;
            secrets::decode_secret_key(&row.value)
                .map_err(|e| anyhow::anyhow!("stored secret_key {e}"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn listen_for_revocations(state: AppState) {
    let mut rx = state.bus.subscribe();
    loop {
        match rx.recv().await {
            Ok(msg) if msg.channel == bus::SESSION_REVOKED => state.revoked.insert(&msg.payload),
            Ok(msg) if msg.channel == crate::orders::payment::recent::ORDER_ENDED => {
                state.recent_payments.ended(&msg.payload);
            }
            Ok(msg) if msg.channel == crate::catalog::CHANGED => {
                state.public_cache.invalidate_all();
                state.checkout_catalog.clear();
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "revocation listener lagged");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn reload_keys_every_minute(keys: Arc<KeyRing>, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = keys.reload(clock.now()).await {
            tracing::warn!(error = %e, "signing key reload failed");
        }
    }
}

/// All routes with the shared middleware.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = crate::openapi::api_router().split_for_parts();
    let openapi_json = openapi.clone();
    Router::new()
        .merge(api)
        .merge(crate::openapi::docs_router(openapi_json))
        .merge(crate::openapi::infra_router())
        .merge(crate::web::router())
        .fallback(mw::not_found)
        .method_not_allowed_fallback(mw::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), crate::http::public_cache::serve))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::ratelimit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::security::ip_blocks::enforce,
        ))
        .layer(middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(mw::security_headers))
        .layer(CatchPanicLayer::custom(mw::panic_response))
        .layer(middleware::from_fn(crate::web::errors::friendly))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
