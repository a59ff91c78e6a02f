//! A molecule service on loopback that fails on purpose: the counterpart the importer example and
//! its tests run against.
//!
//! `GET /molecules/{id}` answers with a [`Molecule`] as JSON, or with one of the faults real
//! services show: 503 with `Retry-After`, 429, a connection dropped without an answer, an answer
//! slower than any sensible timeout, a body that is not JSON, 404 for ids it does not know, and an
//! outage window in which every request gets a 503.
//!
//! Every decision is a pure function of the seed, the id and how many times that id was asked
//! for before ([`ServiceConfig::answer`]), so a run is repeatable whatever order concurrent
//! requests arrive in; only the outage depends on time. The service counts what it did
//! ([`ServiceStats`]) so tests can compare it with what the client saw.
//!
//! ```no_run
//! use resilience::flaky_service::{FlakyService, ServiceConfig};
//! # async fn demo() -> std::io::Result<()> {
//! let service = FlakyService::start(ServiceConfig { records: 100, ..ServiceConfig::default() }).await?;
//! let body = reqwest::get(format!("{}/molecules/1", service.url())).await.unwrap();
//! println!("{} after {} requests", body.status(), service.stats().requests);
//! service.shutdown().await;
//! # Ok(()) }
//! ```

mod scenario;

pub use scenario::{Answer, FaultMix, Molecule, Outage, PermanentFault, ServiceConfig};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the service did, request by request, summed.
///
/// ```
/// use resilience::flaky_service::ServiceStats;
/// let stats = ServiceStats { unavailable: 2, outage: 3, reset: 1, ..ServiceStats::default() };
/// assert_eq!(stats.transient_faults(), 6);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStats {
    /// Requests received (a dropped connection included).
    pub requests: u64,
    /// Records served whole and on time.
    pub ok: u64,
    /// 503 with `Retry-After`.
    pub unavailable: u64,
    /// 429 with `Retry-After`.
    pub rate_limited: u64,
    /// Connections dropped without an answer.
    pub reset: u64,
    /// Answers held back for [`ServiceConfig::slow_delay`].
    pub slow: u64,
    /// 503 during the outage.
    pub outage: u64,
    /// 404.
    pub not_found: u64,
    /// Bodies that are not JSON.
    pub malformed: u64,
    /// Requests and transient faults per id.
    pub per_id: BTreeMap<u64, IdStats>,
}

/// What the service did for one id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IdStats {
    /// Requests for it.
    pub requests: u64,
    /// Of which got a transient fault (the outage included).
    pub transient_faults: u64,
}

impl ServiceStats {
    /// Faults that may go away when asked again: 503, 429, dropped, slow, outage.
    pub fn transient_faults(&self) -> u64 {
        self.unavailable + self.rate_limited + self.reset + self.slow + self.outage
    }

    fn count(&mut self, id: Option<u64>, answer: &Answer) {
        let counter = match answer {
            Answer::Record(_) => &mut self.ok,
            Answer::Malformed(_) => &mut self.malformed,
            Answer::NotFound => &mut self.not_found,
            Answer::Unavailable => &mut self.unavailable,
            Answer::RateLimited => &mut self.rate_limited,
            Answer::Reset => &mut self.reset,
            Answer::Slow(_) => &mut self.slow,
            Answer::Outage => &mut self.outage,
        };
        *counter += 1;
        if let Some(id) = id {
            if answer.is_transient() {
                self.per_id.entry(id).or_default().transient_faults += 1;
            }
        }
    }
}

struct Shared {
    config: ServiceConfig,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    stats: ServiceStats,
    outage_started: Option<Instant>,
    /// When each request of the outage came, after its start.
    outage_offsets: Vec<Duration>,
}

impl Shared {
    /// Counts the request and decides its answer.
    fn answer(&self, id: Option<u64>) -> Answer {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.stats.requests += 1;
        let previous = id.map_or(0, |id| {
            let entry = inner.stats.per_id.entry(id).or_default();
            entry.requests += 1;
            entry.requests - 1
        });
        let answer = if self.in_outage(&mut inner) {
            let offset = inner.outage_started.map_or(Duration::ZERO, |s| s.elapsed());
            inner.outage_offsets.push(offset);
            Answer::Outage
        } else {
            match id {
                Some(id) => self.config.answer(id, previous),
                None => Answer::NotFound,
            }
        };
        inner.stats.count(id, &answer);
        answer
    }

    fn in_outage(&self, inner: &mut Inner) -> bool {
        let Some(outage) = self.config.outage else {
            return false;
        };
        if inner.stats.requests <= outage.after_requests {
            return false;
        }
        let started = *inner.outage_started.get_or_insert_with(Instant::now);
        started.elapsed() < outage.duration
    }
}

/// The service, running on `127.0.0.1` on an ephemeral port until shut down or dropped.
pub struct FlakyService {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
}

impl FlakyService {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn start(config: ServiceConfig) -> std::io::Result<FlakyService> {
        config
            .validate()
            .map_err(|msg| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new()
            .route("/molecules/{id}", get(molecule))
            .with_state(Arc::clone(&shared));
        let (shutdown, stop) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, router, stop));
        Ok(FlakyService {
            addr,
            shared,
            shutdown,
            accept: Some(accept),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// What it did so far.
    pub fn stats(&self) -> ServiceStats {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stats
            .clone()
    }

    /// When the outage started and when it ends (or ended), once it has started.
    pub fn outage_window(&self) -> Option<(Instant, Instant)> {
        let outage = self.shared.config.outage?;
        let started = self
            .shared
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .outage_started?;
        Some((started, started + outage.duration))
    }

    /// For every request answered with the outage's 503, how long after the outage's start it
    /// came, in order: whether requests came in one burst or kept coming.
    pub fn outage_request_offsets(&self) -> Vec<Duration> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .outage_offsets
            .clone()
    }

    /// Stops accepting, closes every connection and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
    }
}

impl Drop for FlakyService {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, router.clone(), stop.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

/// Lets a handler drop its own connection without answering.
#[derive(Clone)]
struct DropConnection(Arc<Notify>);

async fn serve_connection(stream: TcpStream, router: Router, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    // Closing with a zero linger sends RST: the client sees a reset, as with a crashed peer.
    let _ = stream.set_zero_linger();
    let drop_it = DropConnection(Arc::new(Notify::new()));
    let service = TowerToHyperService::new(router.layer(Extension(drop_it.clone())));
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    // Returning drops the connection future and with it the socket.
    tokio::select! {
        _ = connection => {}
        _ = drop_it.0.notified() => {}
        _ = stop.changed() => {}
    }
}

async fn molecule(
    State(shared): State<Arc<Shared>>,
    Extension(drop_it): Extension<DropConnection>,
    Path(id): Path<String>,
) -> Response {
    let answer = shared.answer(id.parse().ok());
    let retry_after = shared.config.retry_after.as_secs()
        + u64::from(shared.config.retry_after.subsec_nanos() > 0);
    match answer {
        Answer::Record(m) => Json(m).into_response(),
        Answer::Slow(m) => {
            tokio::time::sleep(shared.config.slow_delay).await;
            Json(m).into_response()
        }
        Answer::Malformed(m) => {
            let json = serde_json::to_string(&m).unwrap_or_default();
            let cut = &json[..json.len() / 2];
            ([(header::CONTENT_TYPE, "application/json")], cut.to_owned()).into_response()
        }
        Answer::NotFound => (StatusCode::NOT_FOUND, format!("no molecule {id}\n")).into_response(),
        Answer::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry_after.to_string())],
            "busy, come back later\n",
        )
            .into_response(),
        Answer::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            "slow down\n",
        )
            .into_response(),
        Answer::Outage => {
            (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance\n").into_response()
        }
        Answer::Reset => {
            drop_it.0.notify_one();
            std::future::pending().await
        }
    }
}
