//! `TestApp`: the service in-process on port 0 with its own database, key prefix, clock
//! and an SMTP sink, driven over real HTTP.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use boxoffice::{
    AppState, Application, BuildOptions, Config, config::ServiceUrl, infra::clock::ManualClock,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::{Notify, OnceCell},
};

/// A password that satisfies the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// Which storage the tests run on (from `BOXOFFICE_TEST_*`).
pub fn mysql_base_url() -> Option<String> {
    std::env::var("BOXOFFICE_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The Redis the tests run against, if any.
pub fn redis_url() -> Option<String> {
    std::env::var("BOXOFFICE_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The test Redis when it is one server: a TCP proxy in front of a cluster cannot stand in for
/// an outage, because the cluster redirects clients to its nodes' own addresses.
pub fn single_redis_url() -> Option<String> {
    redis_url().filter(|u| !u.starts_with("redis+cluster://"))
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);
static STALE_DROPPED: OnceCell<()> = OnceCell::const_new();

/// One test's own database, removed when the test ends.
pub struct TestDb {
    /// URL the app connects with.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(PathBuf),
    Mysql { server: String, name: String },
}

impl TestDb {
    /// Creates an empty database (the app migrates it).
    pub async fn create() -> Self {
        let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        match mysql_base_url() {
            Some(server) => {
                let server = server.trim_end_matches('/').to_owned();
                STALE_DROPPED
                    .get_or_init(|| drop_stale_databases(server.clone(), pid))
                    .await;
                let name = format!("bo_test_{pid}_{n}");
                let conn = server_connection(&server)
                    .await
                    .expect("connect to the test MariaDB");
                use sea_orm::ConnectionTrait;
                conn.execute_unprepared(&format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .await
                .expect("create test database");
                let _ = conn.close().await;
                Self {
                    url: format!("{server}/{name}"),
                    cleanup: Cleanup::Mysql { server, name },
                }
            }
            None => {
                let dir = std::env::temp_dir().join("boxoffice-tests");
                std::fs::create_dir_all(&dir).expect("temp dir");
                let path = dir.join(format!("{pid}-{n}-{}.db", uuid::Uuid::now_v7().simple()));
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    cleanup: Cleanup::Sqlite(path),
                }
            }
        }
    }
}

/// One connection to the MariaDB server, made as the app makes its own (no pool reaper task).
async fn server_connection(server: &str) -> Option<sea_orm::DatabaseConnection> {
    let url = boxoffice::config::ServiceUrl::parse(server).ok()?;
    boxoffice::db::connect(&url, Some(1)).await.ok()
}

/// Databases of earlier runs (process ids no longer alive) are dropped once per run.
async fn drop_stale_databases(server: String, pid: u32) {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(conn) = server_connection(&server).await else {
        return;
    };
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 'bo\\_test\\_%'",
        ))
        .await
        .unwrap_or_default();
    let own = format!("bo_test_{pid}_");
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "name") else {
            continue;
        };
        // Only databases of finished runs: another test process may be running right now.
        let owner_alive = name
            .strip_prefix("bo_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !name.starts_with(&own) && !owner_alive {
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
                .await;
        }
    }
    let _ = conn.close().await;
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Mysql { server, name } => {
                let (server, name) = (server.clone(), name.clone());
                // The test's runtime is ending; drop on a thread of our own. A run that exits
                // first leaves the database to the next run's stale sweep.
                std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async {
                        use sea_orm::ConnectionTrait;
                        if let Some(conn) = server_connection(&server).await {
                            let _ = conn
                                .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
                                .await;
                            let _ = conn.close().await;
                        }
                    });
                });
            }
        }
    }
}

/// A mail as the SMTP sink received it.
#[derive(Clone, Debug)]
pub struct SentMail {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Decoded subject.
    pub subject: String,
    /// Decoded text part.
    pub text: String,
    /// Decoded HTML part.
    pub html: String,
}

impl SentMail {
    /// The first 6-digit number in the text part.
    pub fn code(&self) -> String {
        self.text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("mail contains a 6-digit code")
            .to_owned()
    }
}

/// A minimal SMTP server that keeps what it receives.
#[derive(Clone)]
pub struct MailSink {
    /// `smtp://127.0.0.1:PORT`.
    pub url: String,
    mails: Arc<Mutex<Vec<SentMail>>>,
    arrived: Arc<Notify>,
}

impl MailSink {
    /// Listens on a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind SMTP sink");
        Self::serve(listener)
    }

    /// Serves SMTP on an already bound listener.
    pub fn serve(listener: TcpListener) -> Self {
        let port = listener.local_addr().expect("addr").port();
        let sink = Self {
            url: format!("smtp://127.0.0.1:{port}"),
            mails: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = accepting.clone();
                tokio::spawn(async move {
                    let _ = sink.session(stream).await;
                });
            }
        });
        sink
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let mut rcpt = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "HELO" => write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?,
                "MAIL" => write.write_all(b"250 OK\r\n").await?,
                "RCPT" => {
                    let addr = line
                        .trim()
                        .trim_start_matches(|c| c != '<')
                        .trim_matches(['<', '>'])
                        .to_owned();
                    rcpt.push(addr);
                    write.write_all(b"250 OK\r\n").await?;
                }
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut data = Vec::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        let l = line
                            .strip_prefix('.')
                            .filter(|_| line.starts_with(".."))
                            .unwrap_or(&line);
                        data.extend_from_slice(l.as_bytes());
                    }
                    self.store(std::mem::take(&mut rcpt), &data);
                    write.write_all(b"250 queued\r\n").await?;
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => write.write_all(b"250 OK\r\n").await?,
            }
        }
    }

    fn store(&self, to: Vec<String>, raw: &[u8]) {
        let parsed = mail_parser::MessageParser::default().parse(raw);
        let mail = match parsed {
            Some(m) => SentMail {
                to,
                subject: m.subject().unwrap_or_default().to_owned(),
                text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            },
            None => SentMail {
                to,
                subject: String::new(),
                text: String::from_utf8_lossy(raw).into_owned(),
                html: String::new(),
            },
        };
        self.mails.lock().expect("sink lock").push(mail);
        self.arrived.notify_waiters();
    }

    /// Every mail received so far.
    pub fn all(&self) -> Vec<SentMail> {
        self.mails.lock().expect("sink lock").clone()
    }

    /// Mails received for an address (case-insensitive).
    pub fn to(&self, address: &str) -> Vec<SentMail> {
        self.all()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits (with a deadline, not a sleep) until `count` mails for the address arrived.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<SentMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let notified = self.arrived.notified();
            let mails = self.to(address);
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} mail(s) for {address}, got {}",
                    self.to(address).len()
                );
            }
        }
    }
}

/// A verified user with a token pair.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// Address.
    pub email: String,
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
}

/// Options for [`TestApp::spawn_with`].
pub struct Spawn {
    /// SMTP URL; a fresh sink when `None`.
    pub smtp_url: Option<String>,
    /// Adjusts the configuration.
    pub configure: fn(&mut Config),
    /// Replaces the live-orders hook.
    pub live_orders: Option<Arc<dyn boxoffice::auth::deletion::LiveOrders>>,
    /// Replaces the Redis URL (e.g. a proxy the test can cut).
    pub redis_url: Option<String>,
    /// OAuth providers (e.g. a fake provider's settings).
    pub oauth: Option<boxoffice::config::OAuthConfig>,
    /// `DATABASE_READ_URL` (a second database standing in for a replica).
    pub database_read_url: Option<String>,
    /// Reach the test database at another URL (e.g. through a proxy the test can cut).
    pub database_url: Option<String>,
    /// Serve at `http://localhost:PORT` with `PUBLIC_URL` set to it (browsers: cookies, the
    /// WebSocket origin check and the WebAuthn relying party all want the real origin).
    pub localhost: bool,
}

impl Default for Spawn {
    fn default() -> Self {
        Self {
            smtp_url: None,
            configure: |_| {},
            live_orders: None,
            redis_url: None,
            oauth: None,
            database_read_url: None,
            database_url: None,
            localhost: false,
        }
    }
}

/// The service under test.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Client without cookies.
    pub client: reqwest::Client,
    /// The injected clock.
    pub clock: Arc<ManualClock>,
    /// Where mail goes.
    pub mail: MailSink,
    /// The app's state (database, services).
    pub state: AppState,
    /// The test's database.
    pub db: Arc<TestDb>,
    /// Prefix of this test's Redis keys.
    pub key_prefix: String,
}

impl TestApp {
    /// Starts an app on the backends chosen by the environment.
    pub async fn spawn() -> Self {
        Self::spawn_with(Spawn::default()).await
    }

    /// Starts an app with options.
    pub async fn spawn_with(options: Spawn) -> Self {
        Self::spawn_on(TestDb::create().await, options).await
    }

    /// Starts an app on a database prepared by the test.
    pub async fn spawn_on(db: TestDb, options: Spawn) -> Self {
        let key_prefix = format!("bo_test:{}:", uuid::Uuid::now_v7().simple());
        let clock = Arc::new(ManualClock::starting_now());
        Self::start(Arc::new(db), key_prefix, clock, (None, None), options).await
    }

    /// A second instance over the same database, Redis prefix and clock (scale-out tests).
    /// Without Redis the two share the in-process bus and waiting room, standing in for Redis.
    pub async fn spawn_peer(&self) -> Self {
        self.spawn_peer_with(Spawn::default()).await
    }

    /// A peer instance with options (e.g. the same `configure` as this one).
    pub async fn spawn_peer_with(&self, options: Spawn) -> Self {
        let bus = Some(self.state.bus.clone());
        let room = Some(self.state.queue.room.clone());
        Self::start(
            self.db.clone(),
            self.key_prefix.clone(),
            self.clock.clone(),
            (bus, room),
            options,
        )
        .await
    }

    async fn start(
        db: Arc<TestDb>,
        key_prefix: String,
        clock: Arc<ManualClock>,
        (shared_bus, shared_room): (
            Option<boxoffice::infra::bus::Bus>,
            Option<Arc<dyn boxoffice::queue::WaitingRoom>>,
        ),
        options: Spawn,
    ) -> Self {
        let mail = MailSink::start().await;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: ServiceUrl::parse(options.database_url.as_deref().unwrap_or(&db.url))
                .expect("db url"),
            smtp_url: Some(
                ServiceUrl::parse(options.smtp_url.as_deref().unwrap_or(&mail.url))
                    .expect("smtp url"),
            ),
            redis_url: options
                .redis_url
                .clone()
                .or_else(redis_url)
                .map(|u| ServiceUrl::parse(&u).expect("redis url")),
            database_read_url: options
                .database_read_url
                .as_deref()
                .map(|u| ServiceUrl::parse(u).expect("read url")),
            database_pool_max: Some(5),
            ..Config::default()
        };
        // The port must be known before start when PUBLIC_URL names it; the socket stays bound
        // from here on, so no parallel test can take the port in between.
        let mut listener = None;
        if options.localhost {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            let port = socket.local_addr().expect("addr").port();
            config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
            config.public_url = url::Url::parse(&format!("http://localhost:{port}")).expect("url");
            listener = Some(socket);
        }
        (options.configure)(&mut config);
        if let Some(oauth) = options.oauth {
            config.oauth = oauth;
        }
        let app = Application::build(
            config,
            BuildOptions {
                clock: clock.clone(),
                key_prefix: key_prefix.clone(),
                shared_bus,
                shared_room,
                live_orders: options.live_orders,
                listener,
                ..BuildOptions::default()
            },
        )
        .await
        .expect("app builds");
        let port = app.local_addr().expect("addr").port();
        let state = app.state().clone();
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            base: if options.localhost {
                format!("http://localhost:{port}")
            } else {
                format!("http://127.0.0.1:{port}")
            },
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            clock,
            mail,
            state,
            db,
            key_prefix,
        }
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET` without credentials.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// `GET` with a Bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// `POST` JSON without credentials.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `POST` JSON with a Bearer token.
    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `POST` JSON as a signed-in user with an `Idempotency-Key`.
    pub async fn post_as_with_key(
        &self,
        path: &str,
        token: &str,
        key: &str,
        body: &Value,
    ) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `POST` a raw body with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Sends a raw JSON body (e.g. oversized) with a method and a Bearer token.
    pub async fn raw_json_as(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: String,
    ) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Signs up (expects 201).
    pub async fn signup(&self, email: &str) -> Value {
        let response = self
            .post(
                "/auth/signup",
                &json!({"email": email, "password": PASSWORD, "name": "김민지"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "signup of {email}");
        response.json().await.expect("json")
    }

    /// Signs up and verifies with the mailed code.
    pub async fn signup_verified(&self, email: &str) {
        self.signup(email).await;
        let code = self.mail.wait_for(email, 1).await[0].code();
        let response = self
            .post("/auth/verify-email", &json!({"email": email, "code": code}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "verification of {email}");
    }

    /// Signs in (expects 200) and returns the token pair.
    pub async fn login(&self, email: &str) -> (String, String) {
        let response = self
            .post(
                "/auth/login",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        let body: Value = response.json().await.expect("json");
        (
            body["access_token"]
                .as_str()
                .expect("access token")
                .to_owned(),
            body["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        )
    }

    /// A verified, signed-in account with the given role, created directly in the database.
    pub async fn user_with_role(&self, role: boxoffice::auth::model::Role) -> TestUser {
        let email = format!(
            "{}-{}@example.com",
            role.as_str().to_lowercase(),
            uuid::Uuid::now_v7().simple()
        );
        let parsed = boxoffice::auth::model::Email::parse(&email).expect("email");
        let hash = self
            .state
            .passwords
            .hash(self.state.rng.clone(), PASSWORD.to_owned())
            .await
            .expect("hash");
        boxoffice::auth::users::insert(
            &self.state.db,
            self.state.clock.now(),
            boxoffice::auth::users::NewUser {
                email: &parsed,
                password_hash: Some(hash),
                name: Some(format!("{} 테스트", role.as_str())),
                nickname: None,
                locale: boxoffice::auth::model::Locale::Ko,
                role,
                vip: false,
                verified: true,
            },
        )
        .await
        .expect("insert user");
        let (access_token, refresh_token) = self.login(&email).await;
        TestUser {
            email,
            access_token,
            refresh_token,
        }
    }

    /// A verified, signed-in administrator.
    pub async fn admin(&self) -> TestUser {
        self.user_with_role(boxoffice::auth::model::Role::Admin)
            .await
    }

    /// `n` verified buyers with access tokens minted directly (no password, no mail): for tests
    /// that need a crowd, where `user()`'s sign-up and password hashing would dominate.
    pub async fn buyers(&self, n: usize) -> Vec<TestUser> {
        use boxoffice::auth::{model, users};
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let email = format!("buyer-{}@example.com", uuid::Uuid::now_v7().simple());
            let parsed = model::Email::parse(&email).expect("email");
            let now = self.state.clock.now();
            let user = users::insert(
                &self.state.db,
                now,
                users::NewUser {
                    email: &parsed,
                    password_hash: None,
                    name: Some("구매자".into()),
                    nickname: None,
                    locale: model::Locale::Ko,
                    role: model::Role::User,
                    vip: false,
                    verified: true,
                },
            )
            .await
            .expect("insert buyer");
            out.push(self.session_for(&user.id, &email).await);
        }
        out
    }

    /// A session for an existing account, minted without its password (demo accounts, crowds).
    pub async fn session_for(&self, user_id: &str, email: &str) -> TestUser {
        use boxoffice::auth::{model, sessions};
        let now = self.state.clock.now();
        let (family, refresh_token) = sessions::start(
            &self.state.db,
            self.state.rng.as_ref(),
            now,
            user_id,
            sessions::kind::REFRESH,
            "TEST",
            &Default::default(),
        )
        .await
        .expect("session");
        let access_token = self
            .state
            .tokens
            .issue(user_id, &family, model::Role::User, false, now)
            .expect("token");
        TestUser {
            email: email.to_owned(),
            access_token,
            refresh_token,
        }
    }

    /// A fresh verified, signed-in user.
    pub async fn user(&self) -> TestUser {
        let email = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
        self.signup_verified(&email).await;
        let (access_token, refresh_token) = self.login(&email).await;
        TestUser {
            email,
            access_token,
            refresh_token,
        }
    }
}

/// A browser: keeps cookies and follows redirects one at a time. Links to `PUBLIC_URL` (which
/// the app builds its redirects from) are sent to the test instance.
pub struct Browser {
    /// The cookie-keeping client.
    pub client: reqwest::Client,
    base: String,
    public: String,
}

impl TestApp {
    /// A fresh browser for this app.
    pub fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .expect("client"),
            base: self.base.clone(),
            public: self.state.config.origin(),
        }
    }
}

impl TestApp {
    /// A cookie browser signed in as `user` (`POST /auth/login?session=cookie`), reading pages in
    /// `lang` when given (else the profile's language decides); also the session's CSRF token.
    pub async fn signed_in_browser(
        &self,
        user: &TestUser,
        lang: Option<&str>,
    ) -> (Browser, String) {
        let browser = self.browser();
        let response = browser
            .client
            .post(self.url("/auth/login?session=cookie"))
            .json(&json!({"email": user.email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
        if let Some(lang) = lang {
            browser.get(&format!("/lang?to={lang}&next=/")).await;
        }
        (browser, csrf)
    }
}

impl Browser {
    /// `GET` a page: its status and its text.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    fn resolve(&self, url: &str) -> String {
        if let Some(path) = url.strip_prefix(&self.public) {
            format!("{}{path}", self.base)
        } else if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        }
    }

    /// `GET` a path of the app or any URL.
    pub async fn get(&self, url: &str) -> Response {
        self.client
            .get(self.resolve(url))
            .send()
            .await
            .expect("request")
    }

    /// Follows redirects until a non-redirect answer, or until the app redirects to one of its
    /// own pages (returned as the redirect, so its `Location` can be checked).
    pub async fn follow(&self, mut response: Response) -> Response {
        for _ in 0..10 {
            if !response.status().is_redirection() {
                return response;
            }
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .expect("redirect has a location")
                .to_owned();
            if location.starts_with('/') && !location.starts_with("/auth/oauth/") {
                return response;
            }
            response = self.get(&location).await;
        }
        panic!("too many redirects");
    }

    /// The `Location` of a redirect.
    pub fn location(response: &Response) -> String {
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("location")
            .to_owned()
    }
}

/// Polls `check` until it holds, failing after a deadline: for effects another task or instance
/// makes in the background (pub/sub, the ticker, workers), never as a plain sleep.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Asserts a problem+json answer with the given status and code; returns the body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(actual, status, "status; body: {body}");
    assert_eq!(
        content_type, "application/problem+json",
        "content type; body: {body}"
    );
    assert_eq!(body["code"], code, "code; body: {body}");
    assert_eq!(
        body["status"],
        status.as_u16(),
        "status field; body: {body}"
    );
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
    body
}

/// A TCP proxy in front of a test service (Redis, MariaDB) that the test can cut and restore,
/// standing in for an outage: cutting drops every open connection and refuses new ones.
pub struct FlakyProxy {
    /// The service's URL with the proxy's address in place of the real one.
    pub url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    trap: CommitTrap,
}

/// Armed with some bytes (a statement's text or a value it binds), the next MySQL `COMMIT` of a
/// transaction that sent them reaches the server, and its answer is swallowed as the connection
/// drops.
type CommitTrap = Arc<Mutex<Option<Vec<u8>>>>;

/// Relays one connection both ways, springing the [`CommitTrap`] when it matches.
async fn relay(
    mut inbound: tokio::net::TcpStream,
    mut outbound: tokio::net::TcpStream,
    trap: CommitTrap,
) {
    use tokio::io::AsyncReadExt;
    // A MySQL text query: one byte of command (COM_QUERY) and the statement.
    const COMMIT: &[u8] = b"\x03COMMIT";
    const BEGIN: &[u8] = b"\x03BEGIN";
    let contains =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    let (mut client_in, mut client_out) = inbound.split();
    let (mut server_in, mut server_out) = outbound.split();
    let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut marked = false;
    loop {
        tokio::select! {
            read = client_in.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                let chunk = &up[..n];
                let armed = trap.lock().expect("trap").clone();
                if let Some(marker) = armed {
                    // Only what the transaction itself sent counts.
                    if contains(chunk, BEGIN) {
                        marked = false;
                    }
                    marked |= contains(chunk, &marker);
                    if marked && contains(chunk, COMMIT) {
                        trap.lock().expect("trap").take();
                        if server_out.write_all(chunk).await.is_ok() {
                            // The server commits and answers; the client never hears it.
                            let _ = server_in.read(&mut down).await;
                        }
                        return;
                    }
                }
                if server_out.write_all(chunk).await.is_err() { return; }
            }
            read = server_in.read(&mut down) => {
                let Ok(n @ 1..) = read else { return };
                if client_out.write_all(&down[..n]).await.is_err() { return; }
            }
        }
    }
}

impl FlakyProxy {
    /// Proxies the host and port of `real` (a `redis://` or `mysql://` URL).
    pub async fn start(real: &str) -> Self {
        let mut url = url::Url::parse(real).expect("service url");
        let target = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default()
                .unwrap_or(if url.scheme() == "redis" { 6379 } else { 3306 })
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let trap = CommitTrap::default();
        let (accept_up, accept_links, accept_trap) = (up.clone(), links.clone(), trap.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    continue;
                }
                let (target, trap) = (target.clone(), accept_trap.clone());
                let link = tokio::spawn(async move {
                    if let Ok(outbound) = tokio::net::TcpStream::connect(&target).await {
                        relay(inbound, outbound, trap).await;
                    }
                });
                accept_links.lock().expect("links").push(link);
            }
        });
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(port)).expect("port");
        Self {
            url: url.to_string().trim_end_matches('/').to_owned(),
            up,
            links,
            trap,
        }
    }

    /// The next `COMMIT` of a MySQL transaction that sent `marker` (in a statement's text or
    /// a bound value) is carried out by the server, but its answer is lost with the connection:
    /// the client cannot tell whether the transaction committed.
    pub fn lose_the_answer_to_the_commit_after(&self, marker: &str) {
        *self.trap.lock().expect("trap") = Some(marker.as_bytes().to_vec());
    }

    /// Whether the armed trap has been sprung.
    pub fn trap_sprung(&self) -> bool {
        self.trap.lock().expect("trap").is_none()
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    /// Drops every open connection, as a database restart does, and waits until they are closed;
    /// new connections are accepted throughout.
    pub async fn drop_connections(&self) {
        let links: Vec<_> = self.links.lock().expect("links").drain(..).collect();
        for link in links {
            link.abort();
            let _ = link.await;
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
