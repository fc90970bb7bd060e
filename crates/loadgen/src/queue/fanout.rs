//! `ws-fanout`: `--buyers` buyers join a paused queue, each opens a WebSocket (from loopback
//! source addresses 127.0.0.2 … so the ports of one address do not run out), then the queue is
//! resumed with room for everyone: one admission wave. With `--ws-http2-streams N` the sockets
//! are HTTP/2 streams (RFC 8441), N on each connection, as a load balancer carries them upstream. Measured: the time from the resume to
//! each socket's `admitted` message, and the server's resident memory (`--server-pid`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::http::Request;
use futures_util::StreamExt;
use hyper::client::conn::http2::SendRequest;
use hyper::ext::Protocol;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Message, protocol::Role};

use super::{Join, drop_queue, event_with_queue, label, rss_mib, set_paused};
use crate::cli::Cli;
use crate::http;
use crate::organizer;
use crate::recorder::Recorder;
use crate::report::{PhaseReport, RunOutput};
use crate::runner::{self, PhaseResult, RunConfig};
use crate::scenario::{Scenario, Status, Step};
use crate::tokens;

/// Sockets opened at the same time while connecting.
const CONNECTING_AT_ONCE: usize = 256;
/// How long the wave may take before the missing sockets count as not reached.
const WAVE_DEADLINE: Duration = Duration::from_secs(30);

/// Runs the scenario (see the module documentation).
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let Some(first) = cli.targets.first() else {
        bail!("ws-fanout needs --target URL of a running boxoffice");
    };
    let server: SocketAddr = {
        let url = http::endpoint(first, "/")?;
        let host = url.host_str().context("target host")?.to_owned();
        let port = url.port_or_known_default().context("target port")?;
        tokio::net::lookup_host((host, port))
            .await?
            .find(SocketAddr::is_ipv4)
            .context("the target must resolve to an IPv4 loopback address")?
    };
    let path = cli.tokens.as_deref().context(
        "ws-fanout needs --tokens FILE of distinct buyers (`boxoffice bench seed --users N --out FILE`)",
    )?;
    let lines = tokens::load(path)?;
    let sockets = (cli.buyers as usize).min(lines.len());
    let organizer_token = organizer::read_token(cli.organizer_token_file.as_deref(), "ws-fanout")?;
    let client = http::client(config.users, config.timeout)?;
    let rate = sockets.clamp(1, 100_000) as u32;
    let event_id = event_with_queue(
        &client,
        first,
        &organizer_token,
        "loadgen ws-fanout",
        sockets as u32,
        rate,
    )
    .await?;
    set_paused(&client, first, &organizer_token, &event_id, true).await?;
    eprintln!("ws-fanout: event {event_id}, {sockets} sockets");
    let mut output = RunOutput::default();
    let rss = |when: &str, output: &mut RunOutput| {
        if let Some(pid) = cli.server_pid {
            match rss_mib(pid) {
                Some(mib) => output
                    .notes
                    .push(format!("server RSS {when}: {mib:.0} MiB")),
                None => output
                    .notes
                    .push(format!("server RSS {when}: /proc/{pid}/status unreadable")),
            }
        }
    };
    rss("before the sockets", &mut output);

    let access_tokens = lines
        .into_iter()
        .take(sockets)
        .map(|l| l.access_token)
        .collect();
    let join = Arc::new(Join::new(
        client.clone(),
        std::slice::from_ref(first),
        &event_id,
        access_tokens,
    ));
    let (result, elapsed) =
        runner::run_each(Arc::clone(&join), sockets, config.users, config.timeout).await?;
    output
        .phases
        .push(PhaseReport::measured("join", result, elapsed));
    let queue_tokens: Vec<String> = join.queue_tokens().into_iter().flatten().collect();

    let ticket = Arc::new(Ticket::new(client.clone(), first, &event_id, queue_tokens)?);
    let (result, elapsed) = runner::run_each(
        Arc::clone(&ticket),
        ticket.len(),
        config.users,
        config.timeout,
    )
    .await?;
    output
        .phases
        .push(PhaseReport::measured("ws-ticket", result, elapsed));
    let tickets: Vec<String> = ticket.take().into_iter().flatten().collect();

    // Connect every socket; each keeps reading until told to stop.
    let wave: Arc<Mutex<Option<Instant>>> = Arc::default();
    let recorder = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (admitted_tx, mut admitted_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let sources = cli.source_addresses.max(1);
    let source = move |i: usize| Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(sources)) as u8);
    let connect_started = Instant::now();
    let streams = usize::from(cli.ws_http2_streams);
    let http1_sockets = match (streams, cli.ws_http1_sockets) {
        (0, _) => tickets.len(),
        (_, wanted) => wanted.unwrap_or(0).min(tickets.len()),
    };
    let mut connections = Vec::new();
    if streams > 0 {
        for i in 0..(tickets.len() - http1_sockets).div_ceil(streams) {
            connections.push(http2_connection(source(i), server).await?);
        }
    }
    let transport = Transport {
        http1_sockets,
        connections: Arc::new(connections),
        streams,
    };
    let sockets = Arc::new(Sockets {
        wave: wave.clone(),
        stop: stop_rx,
        admitted: admitted_tx,
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        recorder: Recorder::default(),
    });
    let mut tasks = JoinSet::new();
    for (i, ticket) in tickets.into_iter().enumerate() {
        let path = format!("/queue/ws?event_id={event_id}&ticket={ticket}");
        let (gate, sockets, transport) = (gate.clone(), sockets.clone(), transport.clone());
        let source = source(i);
        tasks.spawn(async move {
            let began = Instant::now();
            let permit = gate.acquire().await;
            if i < transport.http1_sockets {
                let url = format!("ws://{server}{path}");
                let opened = open_http1(source, server, &url).await;
                drop(permit);
                sockets.serve(opened, began).await;
            } else {
                let connection =
                    &transport.connections[(i - transport.http1_sockets) / transport.streams];
                let opened = open_http2(connection.clone(), &path).await;
                drop(permit);
                sockets.serve(opened, began).await;
            }
        });
    }
    // Wait until every socket is open or failed.
    let expected = tasks.len();
    while sockets.connected.load(Ordering::Relaxed) + sockets.failed.load(Ordering::Relaxed)
        < expected
        && connect_started.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let open = sockets.connected.load(Ordering::Relaxed);
    let connect_elapsed = connect_started.elapsed();
    output.phases.push(PhaseReport::measured(
        "connect",
        PhaseResult {
            ops: sockets.recorder.take(),
            scheduled: None,
            timeline: Default::default(),
        },
        connect_elapsed,
    ));
    let how = transport.describe(expected);
    output.notes.push(format!(
        "connect: {open} sockets open after {:.1} s, {how}, from {sources} source addresses (127.0.0.2 …)",
        connect_elapsed.as_secs_f64()
    ));
    // Let the server settle (first position pushes) before measuring its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rss(&format!("with {open} sockets open"), &mut output);

    // The wave: resume with room and rate for everyone.
    *wave.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    let wave_started = Instant::now();
    set_paused(&client, first, &organizer_token, &event_id, false).await?;
    let mut reached = 0usize;
    let mut last = Duration::ZERO;
    while reached < open {
        match tokio::time::timeout_at((wave_started + WAVE_DEADLINE).into(), admitted_rx.recv())
            .await
        {
            Ok(Some(latency)) => {
                reached += 1;
                last = last.max(latency);
                recorder.record("admitted message", &Ok(Status::Ok), latency);
            }
            _ => break,
        }
    }
    for _ in reached..open {
        recorder.record(
            "admitted message",
            &Ok(Status::Unexpected("not received in 30 s".into())),
            WAVE_DEADLINE,
        );
    }
    output.phases.push(PhaseReport::measured(
        "wave",
        PhaseResult {
            ops: recorder.take(),
            scheduled: None,
            timeline: Default::default(),
        },
        last.max(Duration::from_millis(1)),
    ));
    output.notes.push(format!(
        "wave: {reached} of {open} open sockets got `admitted`; the last {:.3} s after the resume request was sent (goal < 2 s); the wave includes the ticker's next tick (every 250 ms) and the rate credit, which after a resume grows from zero at admit_per_second = {rate}",
        last.as_secs_f64()
    ));
    rss("after the wave", &mut output);
    if reached < open {
        output.failure = Some(format!(
            "{} sockets did not get `admitted` within 30 s",
            open - reached
        ));
    }

    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Ok(url) = boxoffice::config::ServiceUrl::parse(&cli.redis_url)
        && let Ok(handle) =
            boxoffice::infra::redis::RedisHandle::connect(&url, &cli.redis_prefix).await
    {
        drop_queue(&handle, &event_id).await;
    }
    Ok(output)
}

/// How the sockets reach the server: the first `http1_sockets` on a TCP connection each, the
/// rest as streams of HTTP/2 connections, `streams` on each.
#[derive(Clone)]
struct Transport {
    http1_sockets: usize,
    connections: Arc<Vec<SendRequest<Body>>>,
    streams: usize,
}

impl Transport {
    fn describe(&self, sockets: usize) -> String {
        let http2 = sockets.saturating_sub(self.http1_sockets);
        match (self.http1_sockets, http2) {
            (h1, 0) => format!("{h1} over HTTP/1.1, one connection each"),
            (0, h2) => format!(
                "{h2} as HTTP/2 streams (RFC 8441), {} on each of {} connections",
                self.streams,
                self.connections.len()
            ),
            (h1, h2) => format!(
                "{h1} over HTTP/1.1 (one connection each) and {h2} as HTTP/2 streams (RFC 8441), {} on each of {} connections",
                self.streams,
                self.connections.len()
            ),
        }
    }
}

/// What every socket task shares: the wave's start, the stop signal and the counters.
struct Sockets {
    wave: Arc<Mutex<Option<Instant>>>,
    stop: watch::Receiver<bool>,
    admitted: tokio::sync::mpsc::UnboundedSender<Duration>,
    connected: AtomicUsize,
    failed: AtomicUsize,
    recorder: Recorder,
}

impl Sockets {
    /// Counts the upgrade, then reads until told to stop, reporting the `admitted` message.
    async fn serve<S>(&self, opened: Result<WebSocketStream<S>>, began: Instant)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        const LABEL: &str = "GET /queue/ws (upgrade)";
        let mut ws = match opened {
            Ok(ws) => {
                self.recorder
                    .record(LABEL, &Ok(Status::Ok), began.elapsed());
                self.connected.fetch_add(1, Ordering::Relaxed);
                ws
            }
            Err(error) => {
                self.recorder.record(LABEL, &Err(error), began.elapsed());
                self.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) if text.contains("\"admitted\"") => {
                        let started = *self.wave.lock().unwrap_or_else(PoisonError::into_inner);
                        if let Some(started) = started {
                            let _ = self.admitted.send(started.elapsed());
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
            }
        }
    }
}

/// A WebSocket from `source` (its own port range) to the server, on its own connection.
async fn open_http1(
    source: Ipv4Addr,
    server: SocketAddr,
    url: &str,
) -> Result<WebSocketStream<TcpStream>> {
    let stream = connect_from(source, server).await?;
    let (ws, response) = tokio_tungstenite::client_async(url, stream).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS.as_u16() {
        bail!("upgrade answered {}", response.status());
    }
    Ok(ws)
}

async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An HTTP/2 connection (prior knowledge, as a proxy speaks to its upstream), ready for
/// extended CONNECT: the server's SETTINGS that allow it precede its first response.
async fn http2_connection(source: Ipv4Addr, server: SocketAddr) -> Result<SendRequest<Body>> {
    let stream = connect_from(source, server).await?;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .context("HTTP/2 handshake")?;
    tokio::spawn(connection);
    let health = Request::get("/healthz").body(Body::empty())?;
    let answered = sender.send_request(health).await?;
    if !answered.status().is_success() {
        bail!("GET /healthz over HTTP/2 answered {}", answered.status());
    }
    Ok(sender)
}

/// A WebSocket as one more stream of an HTTP/2 connection (RFC 8441).
async fn open_http2(
    mut sender: SendRequest<Body>,
    path: &str,
) -> Result<WebSocketStream<TokioIo<Upgraded>>> {
    let request = Request::connect(path)
        .extension(Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13")
        .body(Body::empty())?;
    let mut response = sender.send_request(request).await?;
    if response.status() != StatusCode::OK.as_u16() {
        bail!("extended CONNECT answered {}", response.status());
    }
    let upgraded = hyper::upgrade::on(&mut response).await?;
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await)
}

/// `POST /queue/ws-ticket` with `X-Queue-Token`, once per joined buyer.
struct Ticket {
    client: Client,
    url: reqwest::Url,
    event_id: String,
    queue_tokens: Vec<String>,
    tickets: Mutex<Vec<Option<String>>>,
}

impl Ticket {
    fn new(
        client: Client,
        target: &str,
        event_id: &str,
        queue_tokens: Vec<String>,
    ) -> Result<Self> {
        let n = queue_tokens.len();
        Ok(Self {
            client,
            url: http::endpoint(target, "/queue/ws-ticket")?,
            event_id: event_id.to_owned(),
            queue_tokens,
            tickets: Mutex::new(vec![None; n]),
        })
    }

    fn len(&self) -> usize {
        self.queue_tokens.len()
    }

    fn take(&self) -> Vec<Option<String>> {
        std::mem::take(&mut *self.tickets.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Scenario for Ticket {
    type User = usize;

    fn name(&self) -> &'static str {
        "ws-ticket"
    }

    fn user(&self, index: usize) -> Result<usize> {
        Ok(index)
    }

    async fn step(&self, index: &mut usize) -> Step {
        let sent = self
            .client
            .post(self.url.clone())
            .header("x-queue-token", &self.queue_tokens[*index])
            .json(&json!({"event_id": self.event_id}))
            .send()
            .await;
        let outcome = async {
            let response = sent?;
            let status = response.status();
            let body = response.bytes().await?;
            if status != StatusCode::OK {
                return Ok(Status::Unexpected(label(status, &body)));
            }
            let answer: Value = serde_json::from_slice(&body)?;
            let ticket = answer["ticket"].as_str().context("no ticket")?;
            self.tickets.lock().unwrap_or_else(PoisonError::into_inner)[*index] =
                Some(ticket.to_owned());
            Ok(Status::Ok)
        }
        .await;
        ("POST /queue/ws-ticket", outcome)
    }
}
