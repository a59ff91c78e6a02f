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

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One record of the catalog.
///
/// ```
/// use resilience::flaky_service::Molecule;
/// let m = Molecule::catalog_entry(7);
/// assert_eq!(m.id, 7);
/// assert_eq!(m, Molecule::catalog_entry(7)); // the catalog never changes
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Molecule {
    /// The catalog id.
    pub id: u64,
    /// A display name.
    pub name: String,
    /// The structure as SMILES.
    pub smiles: String,
    /// The molecular formula.
    pub formula: String,
    /// Grams per mole.
    pub molecular_weight: f64,
}

impl Molecule {
    /// The catalog's record for `id`: the same on every run and for every seed.
    pub fn catalog_entry(id: u64) -> Molecule {
        const BASES: [(&str, &str, &str, f64); 8] = [
            ("ethanol", "CCO", "C2H6O", 46.069),
            (
                "caffeine",
                "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
                "C8H10N4O2",
                194.194,
            ),
            ("aspirin", "CC(=O)OC1=CC=CC=C1C(=O)O", "C9H8O4", 180.159),
            ("glycerol", "C(C(CO)O)O", "C3H8O3", 92.094),
            ("dimethyl sulfoxide", "CS(=O)C", "C2H6OS", 78.13),
            (
                "trehalose",
                "C(C1C(C(C(C(O1)OC2C(C(C(C(O2)CO)O)O)O)O)O)O)O",
                "C12H22O11",
                342.297,
            ),
            ("ethylene glycol", "C(CO)O", "C2H6O2", 62.068),
            ("proline", "C1CC(NC1)C(=O)O", "C5H9NO2", 115.132),
        ];
        let (name, smiles, formula, weight) = BASES[(mix(id) % BASES.len() as u64) as usize];
        Molecule {
            id,
            name: format!("{name} #{id}"),
            smiles: smiles.to_owned(),
            formula: formula.to_owned(),
            molecular_weight: weight,
        }
    }
}

/// How often each kind of transient fault is chosen when a request gets one (relative weights).
///
/// ```
/// use resilience::flaky_service::FaultMix;
/// let only_resets = FaultMix { unavailable: 0, rate_limited: 0, reset: 1, slow: 0 };
/// assert_eq!(only_resets.total(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultMix {
    /// 503 with `Retry-After`.
    pub unavailable: u32,
    /// 429 with `Retry-After`.
    pub rate_limited: u32,
    /// The connection is dropped without an answer.
    pub reset: u32,
    /// The answer comes after [`ServiceConfig::slow_delay`].
    pub slow: u32,
}

impl FaultMix {
    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.unavailable + self.rate_limited + self.reset + self.slow
    }
}

impl Default for FaultMix {
    fn default() -> Self {
        FaultMix {
            unavailable: 1,
            rate_limited: 1,
            reset: 1,
            slow: 1,
        }
    }
}

/// A window in which every request fails with a 503 (without `Retry-After`).
///
/// ```
/// use resilience::flaky_service::Outage;
/// use std::time::Duration;
/// let outage = Outage { after_requests: 500, duration: Duration::from_secs(2) };
/// # let _ = outage;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The outage starts with the request after this many.
    pub after_requests: u64,
    /// How long it lasts, on tokio's clock (so paused test time applies).
    pub duration: Duration,
}

/// What the service does. `Default`: 2,000 records, seed 42, a transient fault on 10% of the
/// requests, 2% unknown ids, 1% corrupt records, `Retry-After: 1`, slow answers after 2 s, no
/// outage.
///
/// ```
/// use resilience::flaky_service::ServiceConfig;
/// let config = ServiceConfig { records: 10, fault_rate: 0.0, ..ServiceConfig::default() };
/// assert!(config.validate().is_ok());
/// assert!(ServiceConfig { fault_rate: 1.5, ..config }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// The catalog's ids are `1..=records` (minus the unknown ones).
    pub records: u64,
    /// Seeds every fault decision.
    pub seed: u64,
    /// Probability that a request for a good record gets a transient fault.
    pub fault_rate: f64,
    /// Which transient faults, in what proportions.
    pub mix: FaultMix,
    /// Share of the ids in `1..=records` that the service does not know (404 on every request).
    pub not_found_rate: f64,
    /// Share of the ids whose record is corrupt (a body that is not JSON on every request).
    pub malformed_rate: f64,
    /// Sent as `Retry-After` (whole seconds, rounded up) with 503 and 429 faults.
    pub retry_after: Duration,
    /// How long a slow answer takes.
    pub slow_delay: Duration,
    /// An outage window, if any.
    pub outage: Option<Outage>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            records: 2000,
            seed: 42,
            fault_rate: 0.1,
            mix: FaultMix::default(),
            not_found_rate: 0.02,
            malformed_rate: 0.01,
            retry_after: Duration::from_secs(1),
            slow_delay: Duration::from_secs(2),
            outage: None,
        }
    }
}

/// A fault that every request for an id gets.
///
/// ```
/// use resilience::flaky_service::{PermanentFault, ServiceConfig};
/// let config = ServiceConfig::default();
/// assert_eq!(config.permanent_fault(0), Some(PermanentFault::NotFound));
/// assert_eq!(config.permanent_fault(config.records + 1), Some(PermanentFault::NotFound));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermanentFault {
    /// The id is not in the catalog: 404.
    NotFound,
    /// The record is corrupt: 200 with a body that is not JSON.
    Malformed,
}

/// What the service answers to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// 200 with the record.
    Record(Molecule),
    /// 200 with a body cut off in the middle of the record.
    Malformed(Molecule),
    /// 404.
    NotFound,
    /// 503 with `Retry-After`.
    Unavailable,
    /// 429 with `Retry-After`.
    RateLimited,
    /// The connection is dropped without an answer.
    Reset,
    /// 200 with the record after [`ServiceConfig::slow_delay`].
    Slow(Molecule),
    /// 503 without `Retry-After`: the outage.
    Outage,
}

impl Answer {
    /// Whether asking again may give a different answer.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Answer::Unavailable
                | Answer::RateLimited
                | Answer::Reset
                | Answer::Slow(_)
                | Answer::Outage
        )
    }
}

impl ServiceConfig {
    /// Checks the rates and the mix; the message names the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("fault_rate", self.fault_rate),
            ("not_found_rate", self.not_found_rate),
            ("malformed_rate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("`{name}` must be within [0, 1], got {rate}"));
            }
        }
        if self.fault_rate > 0.0 && self.mix.total() == 0 {
            return Err("`mix` has no fault with a weight above 0".to_owned());
        }
        Ok(())
    }

    /// The fault every request for `id` gets, if any: ids outside `1..=records` and a seeded
    /// share of the others are unknown; a seeded share of the rest is corrupt.
    pub fn permanent_fault(&self, id: u64) -> Option<PermanentFault> {
        if id == 0 || id > self.records {
            return Some(PermanentFault::NotFound);
        }
        if unit(self.seed, id, 0, SALT_NOT_FOUND) < self.not_found_rate {
            return Some(PermanentFault::NotFound);
        }
        if unit(self.seed, id, 0, SALT_MALFORMED) < self.malformed_rate {
            return Some(PermanentFault::Malformed);
        }
        None
    }

    /// Whether a client can ever get the record of `id`.
    ///
    /// ```
    /// use resilience::flaky_service::ServiceConfig;
    /// let config = ServiceConfig { records: 1000, ..ServiceConfig::default() };
    /// let importable = (1..=1000).filter(|&id| config.is_importable(id)).count();
    /// assert!(importable > 940 && importable < 1000); // 2% unknown, 1% corrupt
    /// assert!(!config.is_importable(1001));
    /// ```
    pub fn is_importable(&self, id: u64) -> bool {
        self.permanent_fault(id).is_none()
    }

    /// The answer to the request for `id` that comes after `previous` requests for it, outside
    /// any outage.
    ///
    /// ```
    /// use resilience::flaky_service::{Answer, ServiceConfig};
    /// let config = ServiceConfig { fault_rate: 0.0, ..ServiceConfig::default() };
    /// let id = (1..).find(|&id| config.is_importable(id)).unwrap();
    /// assert!(matches!(config.answer(id, 0), Answer::Record(m) if m.id == id));
    /// ```
    pub fn answer(&self, id: u64, previous: u64) -> Answer {
        match self.permanent_fault(id) {
            Some(PermanentFault::NotFound) => return Answer::NotFound,
            Some(PermanentFault::Malformed) => {
                return Answer::Malformed(Molecule::catalog_entry(id))
            }
            None => {}
        }
        if unit(self.seed, id, previous, SALT_FAULT) >= self.fault_rate || self.mix.total() == 0 {
            return Answer::Record(Molecule::catalog_entry(id));
        }
        let mut pick =
            mix(self.seed ^ mix(id ^ mix(previous ^ SALT_KIND))) % u64::from(self.mix.total());
        for (weight, answer) in [
            (self.mix.unavailable, Answer::Unavailable),
            (self.mix.rate_limited, Answer::RateLimited),
            (self.mix.reset, Answer::Reset),
        ] {
            if pick < u64::from(weight) {
                return answer;
            }
            pick -= u64::from(weight);
        }
        Answer::Slow(Molecule::catalog_entry(id))
    }
}

const SALT_NOT_FOUND: u64 = 0x6e6f_7466_6f75_6e64;
const SALT_MALFORMED: u64 = 0x6d61_6c66_6f72_6d64;
const SALT_FAULT: u64 = 0x6661_756c_7473_2121;
const SALT_KIND: u64 = 0x6b69_6e64_6f66_2121;

/// SplitMix64's finaliser: a well-spread 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) fixed by its inputs.
fn unit(seed: u64, id: u64, n: u64, salt: u64) -> f64 {
    let h = mix(seed ^ mix(id ^ mix(n ^ salt)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_depend_only_on_seed_id_and_count() {
        let config = ServiceConfig {
            fault_rate: 0.5,
            ..ServiceConfig::default()
        };
        for id in 1..50 {
            for n in 0..5 {
                assert_eq!(config.answer(id, n), config.answer(id, n));
            }
        }
        let other = ServiceConfig {
            seed: 7,
            ..config.clone()
        };
        assert!((1..200).any(|id| config.answer(id, 0) != other.answer(id, 0)));
    }

    #[test]
    fn fault_rate_and_mix_are_honoured() {
        let config = ServiceConfig {
            records: 20_000,
            fault_rate: 0.25,
            ..ServiceConfig::default()
        };
        let mut stats = ServiceStats::default();
        for id in (1..=20_000).filter(|&id| config.is_importable(id)) {
            stats.count(Some(id), &config.answer(id, 0));
        }
        let asked = stats.ok + stats.transient_faults();
        let share = stats.transient_faults() as f64 / asked as f64;
        assert!((0.23..0.27).contains(&share), "{share}");
        for kind in [
            stats.unavailable,
            stats.rate_limited,
            stats.reset,
            stats.slow,
        ] {
            let share = kind as f64 / stats.transient_faults() as f64;
            assert!((0.2..0.3).contains(&share), "{stats:?}");
        }
    }

    #[test]
    fn permanent_faults_never_get_transient_ones() {
        let config = ServiceConfig {
            fault_rate: 1.0,
            not_found_rate: 0.1,
            malformed_rate: 0.1,
            ..ServiceConfig::default()
        };
        for id in 1..500 {
            match config.permanent_fault(id) {
                Some(PermanentFault::NotFound) => {
                    assert_eq!(config.answer(id, 3), Answer::NotFound)
                }
                Some(PermanentFault::Malformed) => {
                    assert!(matches!(config.answer(id, 3), Answer::Malformed(_)))
                }
                None => assert!(config.answer(id, 3).is_transient()),
            }
        }
    }

    #[test]
    fn bad_rates_are_rejected_with_the_field_name() {
        let err = ServiceConfig {
            not_found_rate: -0.1,
            ..ServiceConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("not_found_rate"), "{err}");
    }
}
