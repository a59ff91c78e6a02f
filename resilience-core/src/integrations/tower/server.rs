//! The server side: services whose errors must be `Infallible` (axum's routes and layers), where
//! an open breaker has to become an answer.

use super::{
    BoxError, ClassifyResponse, HttpClassifier, NoReplay, ResilienceLayer, ResilienceService,
    ResponseFuture,
};
use crate::{CircuitOpenError, RetryManager};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// A layer for servers (axum and any `http::Response`-returning service): it applies the
/// manager's policy for one (component, operation) to each request like [`ResilienceLayer`],
/// and answers instead of failing, as tower-http's timeout layer answers `408`:
///
/// - an open breaker becomes `503 Service Unavailable` with `Retry-After` (the breaker's
///   remaining open time in whole seconds, rounded up, at least 1; none when an operator forced
///   it open) and an empty body;
/// - any other error of the wrapped service becomes `500 Internal Server Error`, logged.
///
/// A handler runs once per request ([`NoReplay`]): the breaker sees the responses
/// ([`HttpClassifier`]: a 5xx counts as a failure) and, while it is open, requests are shed with
/// the 503 without reaching the handler. The response body type must be `Default` (the
/// answers' bodies are empty).
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, ResilienceServerLayer, RetryManager};
/// use std::sync::Arc;
/// use tower::{Layer, ServiceExt};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let manager = Arc::new(RetryManager::builder()
///     .circuit_breaker_config(CircuitBreakerConfig { failure_threshold: 1, ..Default::default() })
///     .build().unwrap());
/// let handler = tower::service_fn(|_: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::builder().status(500).body(String::new()).unwrap())
/// });
/// let server = ResilienceServerLayer::new(Arc::clone(&manager), "api", "report").layer(handler);
///
/// let first = server.clone().oneshot(http::Request::new(String::new())).await.unwrap();
/// assert_eq!(first.status(), 500); // the handler's answer; the breaker opens
/// let shed = server.oneshot(http::Request::new(String::new())).await.unwrap();
/// assert_eq!(shed.status(), 503);
/// assert_eq!(shed.headers()["retry-after"], "60"); // the default reset timeout
/// # });
/// ```
#[derive(Clone)]
pub struct ResilienceServerLayer<C = HttpClassifier> {
    layer: ResilienceLayer<C, NoReplay>,
}

impl ResilienceServerLayer {
    /// A layer applying `manager`'s policy for (`component`, `operation`), judging responses
    /// with [`HttpClassifier`].
    pub fn new(
        manager: Arc<RetryManager>,
        component: impl Into<Arc<str>>,
        operation: impl Into<Arc<str>>,
    ) -> Self {
        ResilienceLayer::new(manager, component, operation).for_server()
    }
}

impl<C> ResilienceServerLayer<C> {
    pub(super) fn from_layer(layer: ResilienceLayer<C, NoReplay>) -> Self {
        ResilienceServerLayer { layer }
    }

    /// The same layer judging responses with `classifier`.
    ///
    /// ```
    /// use resilience_core::{AnyResponseOk, ResilienceServerLayer, RetryManager};
    /// use std::sync::Arc;
    /// // Only the handler's errors count: its 5xx answers do not open the breaker.
    /// let layer = ResilienceServerLayer::new(Arc::new(RetryManager::new()), "api", "report")
    ///     .classifier(AnyResponseOk);
    /// # let _ = layer;
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> ResilienceServerLayer<C2> {
        ResilienceServerLayer {
            layer: self.layer.classifier(classifier),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for ResilienceServerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResilienceServerLayer")
            .field(&self.layer)
            .finish()
    }
}

impl<S, C: Clone> Layer<S> for ResilienceServerLayer<C> {
    type Service = ResilienceServer<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ResilienceServer {
            inner: self.layer.layer(inner),
            unready: None,
        }
    }
}

/// The service of a [`ResilienceServerLayer`]: never fails; see the layer for its answers.
pub struct ResilienceServer<S, C = HttpClassifier> {
    inner: ResilienceService<S, C, NoReplay>,
    /// An error the wrapped service gave when asked whether it was ready: this service cannot
    /// fail, so the next request is answered with a 500 instead.
    unready: Option<BoxError>,
}

impl<S: Clone, C> Clone for ResilienceServer<S, C> {
    fn clone(&self) -> Self {
        ResilienceServer {
            inner: self.inner.clone(),
            unready: None,
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for ResilienceServer<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResilienceServer")
            .field(&self.inner)
            .finish()
    }
}

impl<S, C, Req, B> Service<Req> for ResilienceServer<S, C>
where
    S: Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Default + Send + 'static,
    Req: Send + 'static,
    C: ClassifyResponse<http::Response<B>> + Send + Sync + 'static,
{
    type Response = http::Response<B>;
    type Error = Infallible;
    type Future = ServerFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.unready.is_none() {
            if let Err(e) = ready!(self.inner.poll_ready(cx)) {
                self.unready = Some(e);
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.unready.take() {
            Some(e) => ServerFuture {
                call: None,
                failed: Some(e),
            },
            None => ServerFuture {
                call: Some(self.inner.call(request)),
                failed: None,
            },
        }
    }
}

/// The future of a [`ResilienceServer`] call: the handler's response, or the answer standing for
/// its error.
#[must_use = "futures do nothing unless polled"]
pub struct ServerFuture<B> {
    call: Option<ResponseFuture<http::Response<B>>>,
    failed: Option<BoxError>,
}

impl<B> fmt::Debug for ServerFuture<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFuture").finish_non_exhaustive()
    }
}

impl<B: Default> Future for ServerFuture<B> {
    type Output = Result<http::Response<B>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let error = match self.call.as_mut() {
            Some(call) => match ready!(Pin::new(call).poll(cx)) {
                Ok(response) => return Poll::Ready(Ok(response)),
                Err(e) => e,
            },
            None => self
                .failed
                .take()
                .unwrap_or_else(|| "the service was polled after it answered".into()),
        };
        self.call = None;
        Poll::Ready(Ok(answer_for(&*error)))
    }
}

/// The answer standing for `error`: 503 with `Retry-After` for a breaker's rejection, else 500.
fn answer_for<B: Default>(error: &(dyn std::error::Error + 'static)) -> http::Response<B> {
    let mut response = http::Response::new(B::default());
    match error.downcast_ref::<CircuitOpenError>() {
        Some(open) => {
            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            if !open.is_forced() {
                // Whole seconds, rounded up: a client coming back on time finds the breaker
                // ready for a trial; at least 1 while the trial calls are all in flight.
                let remaining = open.remaining();
                let seconds = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, seconds.max(1).into());
            }
        }
        None => {
            tracing::warn!(error = %error, "the wrapped service failed; answering 500");
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_after_is_rounded_up_and_at_least_one_second() {
        for (remaining, header) in [
            (Duration::from_millis(1500), Some("2")),
            (Duration::from_secs(3), Some("3")),
            (Duration::ZERO, Some("1")),
        ] {
            let open = CircuitOpenError::new("a", "b", remaining, None);
            let answer: http::Response<()> = answer_for(&open);
            assert_eq!(answer.status(), 503);
            assert_eq!(
                answer
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap()),
                header
            );
        }
        let other: http::Response<()> = answer_for(&std::io::Error::other("boom"));
        assert_eq!(other.status(), 500);
        assert!(other.headers().get("retry-after").is_none());
    }

    #[test]
    fn a_forced_open_breaker_gives_no_retry_after() {
        let registry = crate::CircuitBreakerRegistry::new();
        let breaker = registry.get_breaker("a", "b");
        breaker.force_open();
        let open = breaker.try_acquire().unwrap_err();
        let answer: http::Response<()> = answer_for(&open);
        assert_eq!(answer.status(), 503);
        assert!(answer.headers().get("retry-after").is_none());
    }
}
