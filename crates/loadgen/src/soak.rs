//! The `soak` scenario: mixed traffic for a long time (10 minutes by default) — anonymous catalog
//! reads, signed-in reads of one's orders, and buyers placing and canceling orders — to show that
//! throughput, p99 and the server's memory stay flat. Every second is kept and charted. Each
//! buyer refreshes its access token before it expires, as a real client does, so a soak can run
//! for longer than a token lives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode, Url};
use serde_json::json;

use crate::cli::Cli;
use crate::http;
use crate::organizer;
use crate::report::RunOutput;
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Status, Step};
use crate::tokens::{self, Refreshed, TokenStore};

/// Sets up an event with a large general-admission ticket through the first target, then runs
/// the mix on every target while sampling the server's memory.
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let Some(first) = cli.targets.first() else {
        bail!("soak needs --target URL of a running boxoffice");
    };
    let Some(tokens_path) = cli.tokens.as_deref() else {
        bail!("soak needs --tokens FILE of seeded buyers (boxoffice bench seed)");
    };
    let buyers = Arc::new(TokenStore::new(tokens::load(tokens_path)?));
    if buyers.len() < config.users as usize {
        // Two users on one line would spend each other's refresh tokens, and a reused refresh
        // token revokes its session.
        bail!(
            "soak needs one buyer per virtual user: {} holds {} for {} users",
            tokens_path.display(),
            buyers.len(),
            config.users
        );
    }
    let token = organizer::read_token(cli.organizer_token_file.as_deref(), "soak")?;
    let client = http::client(config.users, config.timeout)?;
    let event =
        organizer::published_event(&client, first, &token, "loadgen soak", 1_000_000, json!({}))
            .await?;
    let product = organizer::product(
        &client,
        first,
        &token,
        &json!({"event_id": event.id, "type": "TICKET", "name": "Soak", "price": "10000", "quantity": 1_000_000}),
    )
    .await?;
    let product_id = product["id"].as_str().context("product id")?.to_owned();
    let targets = cli
        .targets
        .iter()
        .map(|t| Url::parse(t).with_context(|| format!("target {t}")))
        .collect::<Result<Vec<_>>>()?;
    let buyer_count = buyers.len();
    let mix = Mix {
        client,
        targets,
        buyers: Arc::clone(&buyers),
        event_id: event.id.clone(),
        product_id,
    };

    let started = std::time::Instant::now();
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = cli.server_pid.map(|pid| {
        let samples = Arc::clone(&samples);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                if let Some(mib) = crate::queue::rss_mib(pid) {
                    samples
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((started.elapsed().as_secs(), mib));
                }
            }
        })
    });
    let mut output = RunOutput::default();
    output.phases.push(runner::measure(mix, config).await);
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    output.rss_mib = std::mem::take(
        &mut *samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    output.notes.push(format!(
        "mix per virtual user, in turn: GET /events, GET /events/{{id}}, GET /orders (signed in), POST /orders + PUT /orders/{{id}}/cancel; POST /auth/refresh first and again when three quarters of the access token's life are gone (or after a 401); {} seeded buyers over {} target(s)",
        buyer_count,
        cli.targets.len()
    ));
    if let Some(note) = tokens::write_back(tokens_path, &buyers) {
        output
            .notes
            .push(format!("access tokens refreshed: {note}"));
    }
    if let (Some(first), Some(last)) = (output.rss_mib.first(), output.rss_mib.last()) {
        output.notes.push(format!(
            "server RSS {:.0} MiB after {} s, {:.0} MiB after {} s",
            first.1, first.0, last.1, last.0
        ));
    }
    Ok(output)
}

/// The mixed traffic.
struct Mix {
    client: Client,
    targets: Vec<Url>,
    buyers: Arc<TokenStore>,
    event_id: String,
    product_id: String,
}

/// One virtual user: its target, its buyer's line and tokens, and where it is in the mix.
struct User {
    base: Url,
    line: usize,
    token: String,
    refresh_token: String,
    /// When to refresh the access token; `None` until the first refresh, which gives the token's
    /// lifetime (the file's tokens may be of any age).
    refresh_at: Option<Instant>,
    turn: u64,
}

impl Scenario for Mix {
    type User = User;

    fn name(&self) -> &'static str {
        "soak"
    }

    fn user(&self, index: usize) -> Result<User> {
        let line = self.buyers.get(index);
        Ok(User {
            base: self.targets[index % self.targets.len()].clone(),
            line: index,
            token: line.access_token,
            refresh_token: line.refresh_token,
            refresh_at: None,
            turn: index as u64,
        })
    }

    async fn step(&self, user: &mut User) -> Step {
        if user.refresh_at.is_none_or(|at| Instant::now() >= at) {
            return ("POST /auth/refresh", self.refresh(user).await);
        }
        user.turn += 1;
        let url = |path: &str| user.base.join(path);
        match user.turn % 4 {
            0 => (
                "GET /events",
                get(&self.client, url("/events?limit=20"), None).await,
            ),
            1 => (
                "GET /events/{id}",
                get(
                    &self.client,
                    url(&format!("/events/{}", self.event_id)),
                    None,
                )
                .await,
            ),
            2 => {
                let outcome = get(&self.client, url("/orders?limit=10"), Some(&user.token)).await;
                ("GET /orders", refresh_if_refused(user, outcome))
            }
            _ => {
                let outcome = self.order_and_cancel(user).await;
                ("order + cancel", refresh_if_refused(user, outcome))
            }
        }
    }
}

/// Part of the access token's life a buyer uses before refreshing it (a quarter is left over,
/// so a slow minute does not let it expire).
const REFRESH_AFTER: f64 = 0.75;

/// A 401 means the access token is no longer taken (say the server's clock ran ahead): the next
/// turn refreshes it instead of failing for the rest of the run.
fn refresh_if_refused(user: &mut User, outcome: anyhow::Result<Status>) -> anyhow::Result<Status> {
    if matches!(&outcome, Ok(Status::Unexpected(code)) if code == "401") {
        user.refresh_at = None;
    }
    outcome
}

async fn get<E: std::error::Error + Send + Sync + 'static>(
    client: &Client,
    url: Result<Url, E>,
    token: Option<&str>,
) -> anyhow::Result<Status> {
    let mut request = client.get(url?);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    http::expect(request.send().await, StatusCode::OK).await
}

impl Mix {
    /// Trades the buyer's refresh token for a new pair and schedules the next refresh.
    async fn refresh(&self, user: &mut User) -> anyhow::Result<Status> {
        let url = user.base.join("/auth/refresh")?;
        match tokens::refresh(&self.client, url, &user.refresh_token).await? {
            Refreshed::Pair(pair) => {
                self.buyers
                    .rotate(user.line, &pair.access_token, &pair.refresh_token);
                user.token = pair.access_token;
                user.refresh_token = pair.refresh_token;
                let lifetime = Duration::from_secs(pair.expires_in).mul_f64(REFRESH_AFTER);
                user.refresh_at = Some(Instant::now() + lifetime);
                Ok(Status::Ok)
            }
            // Tried again on the next turn; a spent or revoked token keeps failing, visibly.
            Refreshed::Refused(status) => Ok(status),
        }
    }

    /// Places an order for one ticket and cancels it again, so stock and the buyer's limits stay
    /// where they were however long the soak runs.
    async fn order_and_cancel(&self, user: &User) -> anyhow::Result<Status> {
        let created = self
            .client
            .post(user.base.join("/orders")?)
            .bearer_auth(&user.token)
            .json(&json!({"items": [{"product_id": self.product_id, "quantity": 1}]}))
            .send()
            .await?;
        if created.status() != StatusCode::CREATED {
            return Ok(http::status_check(created.status(), StatusCode::CREATED));
        }
        let order: serde_json::Value = created.json().await?;
        let id = order["id"].as_str().context("order id")?;
        let canceled = self
            .client
            .put(user.base.join(&format!("/orders/{id}/cancel"))?)
            .bearer_auth(&user.token)
            .json(&json!({}))
            .send()
            .await;
        http::expect(canceled, StatusCode::OK).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::Json;
    use axum::Router;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::{get, post, put};
    use serde_json::Value;

    use super::*;
    use crate::tokens::TokenLine;

    /// The one buyer's live tokens on the fake server, and the lifetime it hands out.
    #[derive(Default)]
    struct Live {
        access: String,
        refresh: String,
        issued: u32,
        expires_in: u64,
    }

    type Shared = Arc<Mutex<Live>>;

    fn signed_in(live: &Shared, headers: &HeaderMap) -> bool {
        let live = live.lock().expect("lock");
        headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            == Some(format!("Bearer {}", live.access).as_str())
    }

    fn answer(ok: bool, status: StatusCode) -> (StatusCode, Json<Value>) {
        let status = if ok { status } else { StatusCode::UNAUTHORIZED };
        (status, Json(json!({"id": "order-1"})))
    }

    /// Just enough of boxoffice for the mix: signed-in calls take only the latest access token,
    /// and a refresh takes only the latest refresh token.
    async fn fake_boxoffice(live: Shared) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/events", get(|| async { "[]" }))
            .route("/events/{id}", get(|| async { "{}" }))
            .route(
                "/orders",
                get(|State(live): State<Shared>, headers: HeaderMap| async move {
                    answer(signed_in(&live, &headers), StatusCode::OK)
                })
                .post(|State(live): State<Shared>, headers: HeaderMap| async move {
                    answer(signed_in(&live, &headers), StatusCode::CREATED)
                }),
            )
            .route(
                "/orders/{id}/cancel",
                put(|State(live): State<Shared>, headers: HeaderMap| async move {
                    answer(signed_in(&live, &headers), StatusCode::OK)
                }),
            )
            .route(
                "/auth/refresh",
                post(|State(live): State<Shared>, Json(body): Json<Value>| async move {
                    let mut live = live.lock().expect("lock");
                    if body["refresh_token"] != live.refresh.as_str() {
                        return answer(false, StatusCode::OK);
                    }
                    live.issued += 1;
                    live.access = format!("access-{}", live.issued);
                    live.refresh = format!("refresh-{}", live.issued);
                    let pair = json!({"access_token": live.access, "refresh_token": live.refresh,
                        "token_type": "Bearer", "expires_in": live.expires_in});
                    (StatusCode::OK, Json(pair))
                }),
            )
            .with_state(live);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Url::parse(&format!("http://{addr}")).expect("url")
    }

    fn mix(base: Url) -> Mix {
        let line = TokenLine {
            user_id: "buyer".to_owned(),
            email: "buyer@example.test".to_owned(),
            password: "pw".to_owned(),
            access_token: "access-0".to_owned(),
            refresh_token: "refresh-0".to_owned(),
            extra: serde_json::Map::new(),
        };
        Mix {
            client: http::client(1, Duration::from_secs(5)).expect("client"),
            targets: vec![base],
            buyers: Arc::new(TokenStore::new(vec![line])),
            event_id: "event".to_owned(),
            product_id: "product".to_owned(),
        }
    }

    async fn steps(mix: &Mix, user: &mut User, count: usize) -> Vec<(&'static str, Status)> {
        let mut seen = Vec::new();
        for _ in 0..count {
            let (operation, outcome) = mix.step(user).await;
            seen.push((operation, outcome.expect("an answer")));
        }
        seen
    }

    #[tokio::test]
    async fn a_soak_buyer_refreshes_first_then_again_when_its_token_is_due_or_refused() {
        let live = Arc::new(Mutex::new(Live {
            access: "access-0".to_owned(),
            refresh: "refresh-0".to_owned(),
            issued: 0,
            expires_in: 900,
        }));
        let mix = mix(fake_boxoffice(Arc::clone(&live)).await);
        let mut user = mix.user(0).expect("user");

        // The file's tokens may be of any age, so the first turn refreshes; then the whole mix
        // runs on the new token.
        let seen = steps(&mix, &mut user, 5).await;
        assert_eq!(seen[0], ("POST /auth/refresh", Status::Ok));
        assert!(seen[1..].iter().all(|(_, status)| *status == Status::Ok));
        assert_eq!(mix.buyers.get(0).refresh_token, "refresh-1");

        // A token that lives no time at all is due again at once.
        live.lock().expect("lock").expires_in = 0;
        user.refresh_at = None;
        let seen = steps(&mix, &mut user, 2).await;
        assert_eq!(seen[0], ("POST /auth/refresh", Status::Ok));
        assert_eq!(seen[1], ("POST /auth/refresh", Status::Ok));

        // The server stops taking the access token: the signed-in call that meets the 401 fails,
        // and the next turn refreshes instead of failing for the rest of the run.
        live.lock().expect("lock").expires_in = 900;
        let seen = steps(&mix, &mut user, 1).await;
        assert_eq!(seen[0], ("POST /auth/refresh", Status::Ok));
        live.lock().expect("lock").access = "revoked".to_owned();
        let mut seen = Vec::new();
        while seen.last().is_none_or(|(_, status)| *status == Status::Ok) {
            seen.extend(steps(&mix, &mut user, 1).await);
        }
        assert_eq!(
            seen.last().map(|(_, s)| s),
            Some(&Status::Unexpected("401".to_owned()))
        );
        let seen = steps(&mix, &mut user, 5).await;
        assert_eq!(seen[0], ("POST /auth/refresh", Status::Ok));
        assert!(seen.iter().all(|(_, status)| *status == Status::Ok));
        assert_eq!(mix.buyers.rotations(), 5);
    }
}
