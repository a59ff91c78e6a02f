//! The manager's policies inside tower stacks (feature `tower`): [`ResilienceLayer`] gives any
//! `Service` the retries, backoff and jitter, breaker, retry budget, metrics, hooks and
//! `Retry-After` handling that `#[retry]` gives a function, under the same
//! `"component:operation"` key, so the layer, the attribute and
//! [`RetryManager::circuit_breaker_status`] share one breaker and one set of figures.
//!
//! ```
//! use resilience_core::{CircuitOpenError, ResilienceLayer, RetryConfig, RetryManager};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{BoxError, ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! let manager = Arc::new(
//!     RetryManager::builder()
//!         .default_config(RetryConfig { max_attempts: 3, ..RetryConfig::default() })
//!         .build()?,
//! );
//!
//! // A service that answers 503 with `Retry-After: 1` once, then 200.
//! let calls = Arc::new(AtomicU32::new(0));
//! let seen = Arc::clone(&calls);
//! let backend = tower::service_fn(move |_request: http::Request<String>| {
//!     let n = seen.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         let status = if n == 0 { 503 } else { 200 };
//!         http::Response::builder().status(status).header("retry-after", "1").body(String::new())
//!     }
//! });
//!
//! let client = ServiceBuilder::new()
//!     // Outside ours: one limit for the whole call, its retries and waits included.
//!     .timeout(Duration::from_secs(10))
//!     .layer(ResilienceLayer::new(Arc::clone(&manager), "catalog", "get_molecule"))
//!     // Inside ours: a limit per attempt; an attempt cut short is retried.
//!     .timeout(Duration::from_secs(2))
//!     .service(backend);
//!
//! let started = tokio::time::Instant::now();
//! let request = http::Request::get("http://127.0.0.1/molecules/1").body(String::new())?;
//! let response = client.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! assert_eq!(started.elapsed(), Duration::from_secs(1)); // the server's Retry-After
//!
//! // The same key as `#[retry(component = "catalog", operation = "get_molecule")]`.
//! let figures = manager.metrics_for("catalog", "get_molecule").unwrap();
//! assert_eq!((figures.calls, figures.attempts, figures.retries), (1, 2, 1));
//!
//! // An open breaker rejects without calling the service; the error downcasts.
//! manager.circuit_breaker_registry().force_open("catalog", "get_molecule");
//! let request = http::Request::get("http://127.0.0.1/molecules/2").body(String::new())?;
//! let err: BoxError = client.oneshot(request).await.unwrap_err();
//! assert!(err.downcast_ref::<CircuitOpenError>().is_some());
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! # Ok::<(), BoxError>(()) }).unwrap();
//! ```
//!
//! # What is retried
//!
//! A call is retried when its error or its response is a retryable failure: errors are
//! classified like `Box<dyn Error>` (along their `source()` chain: I/O errors, hyper's errors,
//! the runtime's own), responses by a [`ClassifyResponse`] ([`HttpClassifier`] by default: 5xx,
//! 429 and 408 transient, other 4xx failures that are not retried). A response judged a
//! failure that is not retried (attempts exhausted, not retryable, budget empty) is returned to
//! the caller as it came, not turned into an error.
//!
//! Retrying needs a copy of the request, made before the first attempt by a [`ReplayRequest`]:
//! [`HttpReplay`] (the default) copies an `http::Request` whose body is a [`ReplayBody`] held
//! in memory; [`CloneRequest`] clones any `Clone` request; [`NoReplay`] never retries. **A
//! request that cannot be copied (a streaming body) gets one attempt**: no retry, but the
//! breaker is asked and the attempt is counted, as for any call.
//!
//! # Errors
//!
//! The service's error is [`tower::BoxError`](https://docs.rs/tower/latest/tower/type.BoxError.html)
//! (`Box<dyn Error + Send + Sync>`): the wrapped service's own error as it was (downcast it to
//! its type), or a [`CircuitOpenError`](crate::CircuitOpenError) when the breaker rejected the
//! call. The server-side adapter, [`ResilienceServerLayer`], turns the latter into a
//! `503 Service Unavailable` with `Retry-After` instead, for servers such as axum whose services
//! cannot fail.
//!
//! # Composing with other layers
//!
//! A layer *inside* ours (listed after it in a `ServiceBuilder`) wraps each attempt; one
//! *outside* wraps the whole call, its retries and backoff waits included:
//!
//! | layer | inside `ResilienceLayer` | outside |
//! | --- | --- | --- |
//! | `TimeoutLayer` | a limit per attempt; an attempt cut short is a failure (retried) | one limit for the call; when it fires, the call is dropped wherever it is |
//! | `ConcurrencyLimitLayer` | a permit per attempt, given back while waiting to retry | a permit held for the whole call, its waits included |
//! | `RateLimitLayer`, `LoadShedLayer` | each attempt counts | each call counts once |
//!
//! # Readiness and open breakers
//!
//! By default `poll_ready` is the wrapped service's: an open breaker shows up as the
//! `CircuitOpenError` of the next call, at once and without a wait. With
//! [`ResilienceLayer::not_ready_while_open`] the service instead reports itself not ready
//! (`Poll::Pending`) while its breaker is open and wakes its task when the open time ends, so a
//! load balancer (`tower::balance`) routes calls to its other endpoints in the meantime. It is
//! off by default because:
//!
//! - a caller that is not a balancer would wait, inside `ready()`, for the whole open time
//!   instead of failing fast with the breaker's error;
//! - it must not, and does not, take a half-open trial slot: tower lets a caller drop a ready
//!   service without calling it, so a slot claimed in `poll_ready` could be held by nobody. The
//!   check only reads the breaker's state; a half-open breaker with all its trial calls in
//!   flight reads as ready, and the call that finds it full gets the `CircuitOpenError`;
//! - an error from `poll_ready` would make tower's balancer drop the endpoint for good, so the
//!   option reports `Pending`, never an error.

mod classify;
mod replay;
mod server;

pub use classify::{AnyResponseOk, ClassifyResponse, HttpClassifier};
pub use replay::{CloneRequest, HttpReplay, NoReplay, ReplayBody, ReplayRequest};
pub use server::{ResilienceServer, ResilienceServerLayer};

use crate::call::{OperationHandle, GUARDED_SPEC, ONE_ATTEMPT_SPEC};
use crate::{CircuitOpenError, CircuitState, Classify, ErrorCategory, RetryManager};
use parking_lot::Mutex;
use std::error::Error;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

/// `Box<dyn Error + Send + Sync>`, tower's `BoxError`: the error of every service of this module.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// A tower [`Layer`] that runs every call of the wrapped service under the manager's policy for
/// one (component, operation): see the [module documentation](self) for what is retried, the
/// errors, and how it composes with other layers.
///
/// `C` judges responses ([`HttpClassifier`] by default), `R` copies requests for retries
/// ([`HttpReplay`] by default).
///
/// ```
/// use resilience_core::{AnyResponseOk, CloneRequest, ResilienceLayer, RetryManager};
/// use std::sync::Arc;
/// // A service of plain strings: cloned for retries, every answer a success.
/// let layer = ResilienceLayer::new(Arc::new(RetryManager::new()), "search", "query")
///     .replay(CloneRequest)
///     .classifier(AnyResponseOk);
/// let service = tower::ServiceBuilder::new()
///     .layer(layer)
///     .service_fn(|q: String| async move { Ok::<_, std::io::Error>(q.len()) });
/// # let _ = service;
/// ```
#[derive(Clone)]
pub struct ResilienceLayer<C = HttpClassifier, R = HttpReplay> {
    manager: Arc<RetryManager>,
    component: Arc<str>,
    operation: Arc<str>,
    classifier: C,
    replay: R,
    not_ready_while_open: bool,
}

impl ResilienceLayer {
    /// A layer applying `manager`'s policy for (`component`, `operation`), with the HTTP
    /// response classifier and HTTP request replay.
    ///
    /// ```
    /// use resilience_core::{ResilienceLayer, RetryManager};
    /// use std::sync::Arc;
    /// let layer = ResilienceLayer::new(Arc::new(RetryManager::new()), "catalog", "get");
    /// assert_eq!((layer.component(), layer.operation()), ("catalog", "get"));
    /// ```
    pub fn new(
        manager: Arc<RetryManager>,
        component: impl Into<Arc<str>>,
        operation: impl Into<Arc<str>>,
    ) -> Self {
        ResilienceLayer {
            manager,
            component: component.into(),
            operation: operation.into(),
            classifier: HttpClassifier,
            replay: HttpReplay,
            not_ready_while_open: false,
        }
    }
}

impl<C, R> ResilienceLayer<C, R> {
    /// The same layer judging responses with `classifier`.
    ///
    /// ```
    /// use resilience_core::{ErrorCategory, Failure, ResilienceLayer, RetryManager};
    /// use std::sync::Arc;
    /// // Only 503 is a failure; a 500 is returned as it is.
    /// let layer = ResilienceLayer::new(Arc::new(RetryManager::new()), "catalog", "get")
    ///     .classifier(|r: &http::Response<String>| {
    ///         (r.status() == 503).then(|| Failure::new(ErrorCategory::Unavailable))
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> ResilienceLayer<C2, R> {
        ResilienceLayer {
            manager: self.manager,
            component: self.component,
            operation: self.operation,
            classifier,
            replay: self.replay,
            not_ready_while_open: self.not_ready_while_open,
        }
    }

    /// The same layer copying requests for retries with `replay`.
    ///
    /// ```
    /// use resilience_core::{NoReplay, ResilienceLayer, RetryManager};
    /// use std::sync::Arc;
    /// // Never retried (a non-idempotent POST), still guarded by the breaker and counted.
    /// let layer = ResilienceLayer::new(Arc::new(RetryManager::new()), "orders", "create")
    ///     .replay(NoReplay);
    /// # let _ = layer;
    /// ```
    pub fn replay<R2>(self, replay: R2) -> ResilienceLayer<C, R2> {
        ResilienceLayer {
            manager: self.manager,
            component: self.component,
            operation: self.operation,
            classifier: self.classifier,
            replay,
            not_ready_while_open: self.not_ready_while_open,
        }
    }

    /// Whether `poll_ready` reports the service not ready while its breaker is open (off by
    /// default; the [module documentation](self#readiness-and-open-breakers) says why).
    ///
    /// ```
    /// use resilience_core::{ResilienceLayer, RetryManager};
    /// use std::sync::Arc;
    /// // One endpoint of a balanced set: let the balancer route around it while it is open.
    /// let layer = ResilienceLayer::new(Arc::new(RetryManager::new()), "replica-1", "query")
    ///     .not_ready_while_open(true);
    /// # let _ = layer;
    /// ```
    pub fn not_ready_while_open(mut self, enabled: bool) -> Self {
        self.not_ready_while_open = enabled;
        self
    }

    /// The component of the key.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The operation of the key.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The adapter for servers built on this layer: see [`ResilienceServerLayer`]. Its requests
    /// are never replayed, and `not_ready_while_open` is turned off: a server sheds requests
    /// with a 503 while its breaker is open rather than keeping them waiting.
    ///
    /// ```
    /// use resilience_core::{ResilienceLayer, RetryManager};
    /// use std::sync::Arc;
    /// let server = ResilienceLayer::new(Arc::new(RetryManager::new()), "api", "handler").for_server();
    /// # let _ = server;
    /// ```
    pub fn for_server(self) -> ResilienceServerLayer<C> {
        ResilienceServerLayer::from_layer(self.replay(NoReplay).not_ready_while_open(false))
    }
}

impl<C: fmt::Debug, R: fmt::Debug> fmt::Debug for ResilienceLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceLayer")
            .field("component", &self.component)
            .field("operation", &self.operation)
            .field("classifier", &self.classifier)
            .field("replay", &self.replay)
            .field("not_ready_while_open", &self.not_ready_while_open)
            .finish()
    }
}

impl<S, C: Clone, R: Clone> Layer<S> for ResilienceLayer<C, R> {
    type Service = ResilienceService<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ResilienceService {
            inner,
            shared: Arc::new(Shared {
                manager: Arc::clone(&self.manager),
                component: Arc::clone(&self.component),
                operation: Arc::clone(&self.operation),
                classifier: self.classifier.clone(),
                replay: self.replay.clone(),
                not_ready_while_open: self.not_ready_while_open,
                handle: OnceLock::new(),
            }),
            open_wait: None,
        }
    }
}

/// What every clone of one service shares.
struct Shared<C, R> {
    manager: Arc<RetryManager>,
    component: Arc<str>,
    operation: Arc<str>,
    classifier: C,
    replay: R,
    not_ready_while_open: bool,
    /// The operation's handle (its breaker, metrics and budget), taken on the first call or
    /// readiness check that needs it and held: no look-up by name per call, and the manager
    /// never evicts an operation a service still holds.
    handle: OnceLock<Arc<OperationHandle>>,
}

impl<C, R> Shared<C, R> {
    fn handle(&self) -> &OperationHandle {
        self.handle
            .get_or_init(|| self.manager.held_handle(&self.component, &self.operation))
    }
}

/// The [`Service`] of a [`ResilienceLayer`]: `Clone` when the wrapped service is (each clone
/// shares the layer's settings; the breaker, metrics and budget are the manager's), `Send`
/// and `Sync` when it and the layer's parts are.
///
/// ```
/// use resilience_core::{ResilienceLayer, RetryManager};
/// use std::sync::Arc;
/// use tower::{Layer, ServiceExt};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let layer = ResilienceLayer::new(Arc::new(RetryManager::new()), "api", "get");
/// let service = layer.layer(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::io::Error>(http::Response::new("hello"))
/// }));
/// let response = service.oneshot(http::Request::new(())).await.unwrap();
/// assert_eq!(*response.body(), "hello");
/// # });
/// ```
pub struct ResilienceService<S, C = HttpClassifier, R = HttpReplay> {
    inner: S,
    shared: Arc<Shared<C, R>>,
    /// The wake-up at the end of the open time (only with `not_ready_while_open`). In a mutex
    /// only so that the service stays `Sync` (axum asks for it); `poll_ready` has `&mut self`,
    /// so it is never locked.
    open_wait: Option<Mutex<crate::Sleep>>,
}

impl<S: Clone, C, R> Clone for ResilienceService<S, C, R> {
    fn clone(&self) -> Self {
        ResilienceService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            open_wait: None,
        }
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for ResilienceService<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceService")
            .field("inner", &self.inner)
            .field("component", &self.shared.component)
            .field("operation", &self.shared.operation)
            .finish_non_exhaustive()
    }
}

impl<S, C, R> ResilienceService<S, C, R> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Ready unless the breaker is open; when it is, arranges a wake-up at the end of the open
    /// time. Reads the state only: no trial slot is taken.
    fn poll_breaker(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(wait) = self.open_wait.as_mut() {
                ready!(wait.get_mut().as_mut().poll(cx));
                self.open_wait = None;
            }
            let shared = &self.shared;
            let registry = shared.manager.circuit_breaker_registry();
            let breaker = &shared.handle().breaker;
            let clock = registry.clock();
            // With a Unix time of zero, the deadline reads as the time left on the breaker's
            // own clock (tokio's, paused in tests), not as a wall-clock date.
            let status = breaker.status_at(clock.now(), Duration::ZERO);
            if status.state != CircuitState::Open {
                return Poll::Ready(());
            }
            // Never zero, so that a deadline that just passed cannot spin; a forced-open breaker
            // (no deadline) is looked at again every second.
            let wait = status.open_until.map_or(Duration::from_secs(1), |left| {
                Duration::from_secs_f64(left.max(0.001))
            });
            self.open_wait = Some(Mutex::new(clock.sleep_async(wait)));
        }
    }
}

impl<S, C, R, Req> Service<Req> for ResilienceService<S, C, R>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
    C: ClassifyResponse<S::Response> + Send + Sync + 'static,
    R: ReplayRequest<Req> + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.shared.not_ready_while_open {
            ready!(self.poll_breaker(cx));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The instance `poll_ready` readied runs the first attempt; retries run on clones,
        // each readied again (a concurrency limit inside takes a permit per attempt).
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            inner: Box::pin(respond(Arc::clone(&self.shared), ready, request)),
        }
    }
}

/// One call through the layer. A single `async fn` over the driver's future, with no layer of
/// its own in between: each nested future keeps its own copy of what it was given, and the
/// whole is boxed and moved on every call.
async fn respond<S, C, R, Req>(
    shared: Arc<Shared<C, R>>,
    ready: S,
    request: Req,
) -> Result<S::Response, BoxError>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: ClassifyResponse<S::Response>,
    R: ReplayRequest<Req>,
{
    let shared = &*shared;
    let handle = shared.handle();
    // A request that can be copied is sent as copies, each attempt its own, and kept for the
    // next; one that cannot gets one attempt, itself.
    let copy = shared.replay.replay(&request);
    let (spec, mut first, template, retry_with) = match copy {
        Some(copy) => {
            let retry_with = ready.clone();
            (
                &GUARDED_SPEC,
                Some((ready, copy)),
                Some(request),
                Some(retry_with),
            )
        }
        None => (&ONE_ATTEMPT_SPEC, Some((ready, request)), None, None),
    };
    let attempt = move || {
        let next = first.take().or_else(|| {
            let service = retry_with.clone()?;
            Some((service, shared.replay.replay(template.as_ref()?)?))
        });
        async move {
            let (mut service, request) = next.ok_or(AttemptError::NotReplayable)?;
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|e| AttemptError::Inner(e.into()))?;
            service
                .call(request)
                .await
                .map_err(|e| AttemptError::Inner(e.into()))
        }
    };
    let judge = |response: &S::Response| shared.classifier.classify(response);
    shared
        .manager
        .run_held(handle, spec, &judge, attempt)
        .await
        .map_err(AttemptError::into_box)
}

/// The future of a [`ResilienceService`] call: the response, or the wrapped service's error or
/// a [`CircuitOpenError`] as a [`BoxError`].
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<T> {
    inner: Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>,
}

impl<T> Future for ResponseFuture<T> {
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for ResponseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// The error of one attempt, as the driver classifies it.
#[derive(Debug)]
enum AttemptError {
    /// The wrapped service's error.
    Inner(BoxError),
    /// The breaker rejected the call.
    Open(CircuitOpenError),
    /// A replay strategy that copied the request once refused a later copy.
    NotReplayable,
}

impl AttemptError {
    fn into_box(self) -> BoxError {
        match self {
            AttemptError::Inner(e) => e,
            AttemptError::Open(e) => Box::new(e),
            AttemptError::NotReplayable => Box::new(NotReplayable),
        }
    }
}

impl From<CircuitOpenError> for AttemptError {
    fn from(e: CircuitOpenError) -> Self {
        AttemptError::Open(e)
    }
}

impl Classify for AttemptError {
    fn category(&self) -> ErrorCategory {
        match self {
            AttemptError::Inner(e) => match e.category() {
                ErrorCategory::Unknown => hyper_category(&**e).unwrap_or(ErrorCategory::Unknown),
                known => known,
            },
            AttemptError::Open(e) => e.category(),
            // The strategy's own fault, not the peer's: asking again will not help.
            AttemptError::NotReplayable => ErrorCategory::Configuration,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Inner(e) => e.retry_after(),
            AttemptError::Open(e) => e.retry_after(),
            AttemptError::NotReplayable => None,
        }
    }

    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AttemptError::Inner(e) => Some(&**e),
            AttemptError::Open(e) => Some(e),
            AttemptError::NotReplayable => Some(&NotReplayable),
        }
    }
}

/// A hyper error found along the chain (an HTTP client's failed exchange): a timeout is
/// `Timeout`; a connection closed, reset or cut mid-message is `Network`.
fn hyper_category(err: &(dyn Error + 'static)) -> Option<ErrorCategory> {
    let chain = std::iter::successors(Some(err), |e| (*e).source());
    chain
        .take(crate::classify::MAX_CHAIN_LINKS)
        .find_map(|e| e.downcast_ref::<hyper::Error>())
        .map(|e| {
            if e.is_timeout() {
                ErrorCategory::Timeout
            } else {
                ErrorCategory::Network
            }
        })
}

/// A replay strategy gave a copy for the first retry of a call but not for a later one.
#[derive(Debug, Clone, Copy)]
struct NotReplayable;

impl fmt::Display for NotReplayable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request could not be copied for another attempt")
    }
}

impl Error for NotReplayable {}
