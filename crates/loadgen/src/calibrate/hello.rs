//! Bare axum ceiling: an in-process hello-world server hit over loopback.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;
use reqwest::{Client, StatusCode, Url};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::http;
use crate::report::{PhaseReport, RunOutput};
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Step};

const PHASE: &str = "axum_hello";

/// Starts the server, measures it, and shuts it down.
pub async fn measure(config: &RunConfig, output: &mut RunOutput) {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => {
            let error = anyhow::Error::new(error).context("binding 127.0.0.1:0");
            output.phases.push(PhaseReport::unavailable(PHASE, &error));
            return;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            output
                .phases
                .push(PhaseReport::unavailable(PHASE, &error.into()));
            return;
        }
    };
    let app = Router::new().route("/", get(|| async { "hello" }));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // A dropped sender means the phase is over too, so either way: shut down.
                let _ = stopped.await;
            })
            .await
    });

    let phase = match Hello::new(addr, config) {
        Ok(hello) => runner::measure(hello, config).await,
        Err(error) => PhaseReport::unavailable(PHASE, &error),
    };
    output.phases.push(phase);
    output.notes.push(format!(
        "{PHASE}: the in-process server and the load generator share this machine's {} cores, \
         so this is the ceiling of both together, not of the server alone.",
        std::thread::available_parallelism().map_or(0, usize::from)
    ));

    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => output.notes.push(format!("{PHASE}: server error: {error}")),
        Ok(Err(error)) => output
            .notes
            .push(format!("{PHASE}: server task failed: {error}")),
        Err(_) => output
            .notes
            .push(format!("{PHASE}: server did not shut down within 5 s")),
    }
}

/// `GET /` expecting 200 "hello".
struct Hello {
    client: Client,
    url: Url,
}

impl Hello {
    fn new(addr: SocketAddr, config: &RunConfig) -> Result<Self> {
        Ok(Self {
            client: http::client(config.users, config.timeout)?,
            url: Url::parse(&format!("http://{addr}/")).context("server URL")?,
        })
    }
}

impl Scenario for Hello {
    type User = ();

    fn name(&self) -> &'static str {
        PHASE
    }

    fn user(&self, _index: usize) -> Result<()> {
        Ok(())
    }

    async fn step(&self, _user: &mut ()) -> Step {
        let response = self.client.get(self.url.clone()).send().await;
        ("GET /", http::expect(response, StatusCode::OK).await)
    }
}
