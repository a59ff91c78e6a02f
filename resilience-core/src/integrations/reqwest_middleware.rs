//! The manager's policies for reqwest clients (feature `reqwest-middleware`): a
//! [`reqwest_middleware::Middleware`] doing what the tower layer does, under the same
//! `"component:operation"` key as `#[retry]`.

use crate::call::{OperationHandle, GUARDED_SPEC, ONE_ATTEMPT_SPEC};
use crate::http::answer_failure as status_failure;
use crate::{CircuitOpenError, Classify, ErrorCategory, Failure, RetryManager};
use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use std::error::Error;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Runs every request of a `reqwest_middleware::ClientWithMiddleware` under the manager's
/// policy for one (component, operation): retries with backoff and jitter, the breaker, the
/// retry budget, metrics and hooks.
///
/// - Answers are judged by status as the tower layer's `HttpClassifier` does: 5xx, 429 and 408
///   are transient failures (retried), honouring `Retry-After` (delta-seconds or HTTP-date,
///   capped at the policy's `max_delay`); other 4xx are counted failures, not retried. When no
///   retry follows, the caller gets the last response as it came.
/// - A request whose body cannot be cloned (`Request::try_clone() == None`, a stream) gets one
///   attempt: no retry, counted like any call.
/// - An open breaker rejects the request without sending it:
///   `reqwest_middleware::Error::Middleware` holding the [`CircuitOpenError`] (downcast the
///   `anyhow::Error` to read it).
/// - Per-attempt extensions: each attempt runs with a copy of the request's extensions; the
///   extensions left by the attempt that answered are the caller's afterwards.
///
/// ```
/// use resilience_core::{ResilienceMiddleware, RetryManager};
/// use std::sync::Arc;
/// let manager = Arc::new(RetryManager::new());
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(ResilienceMiddleware::new(Arc::clone(&manager), "catalog", "get_molecule"))
///     .build();
/// // client.get("http://127.0.0.1:8080/molecules/1").send().await ...
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct ResilienceMiddleware {
    manager: Arc<RetryManager>,
    component: Arc<str>,
    operation: Arc<str>,
    /// The operation's handle, taken on the first request and held by every clone: no look-up
    /// by name per request.
    handle: Arc<OnceLock<Arc<OperationHandle>>>,
}

impl ResilienceMiddleware {
    /// A middleware applying `manager`'s policy for (`component`, `operation`).
    ///
    /// ```
    /// use resilience_core::{ResilienceMiddleware, RetryManager};
    /// use std::sync::Arc;
    /// let m = ResilienceMiddleware::new(Arc::new(RetryManager::new()), "catalog", "get");
    /// assert_eq!((m.component(), m.operation()), ("catalog", "get"));
    /// ```
    pub fn new(
        manager: Arc<RetryManager>,
        component: impl Into<Arc<str>>,
        operation: impl Into<Arc<str>>,
    ) -> Self {
        ResilienceMiddleware {
            manager,
            component: component.into(),
            operation: operation.into(),
            handle: Arc::default(),
        }
    }

    /// The component of the key.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The operation of the key.
    pub fn operation(&self) -> &str {
        &self.operation
    }
}

impl fmt::Debug for ResilienceMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceMiddleware")
            .field("component", &self.component)
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// The failure a response stands for, by its status and `Retry-After`.
fn judge(response: &(reqwest::Response, Extensions)) -> Option<Failure> {
    let response = &response.0;
    if response.status().is_success() {
        return None;
    }
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .map(http::HeaderValue::as_bytes);
    status_failure(response.status().as_u16(), retry_after)
}

#[async_trait::async_trait]
impl Middleware for ResilienceMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // Taken before the first attempt consumes the request; `None`: a streaming body, one
        // attempt only.
        let template = request.try_clone();
        let mut first = Some(request);
        let handle = self
            .handle
            .get_or_init(|| self.manager.held_handle(&self.component, &self.operation));
        let spec = match template {
            Some(_) => &GUARDED_SPEC,
            None => &ONE_ATTEMPT_SPEC,
        };
        let base: &Extensions = extensions;
        let outcome = self
            .manager
            .run_held(handle, spec, &judge, move || {
                let request = first
                    .take()
                    .or_else(|| template.as_ref().and_then(reqwest::Request::try_clone));
                // Each attempt gets its own copy: the attempts run one after the other, but a
                // future made by this closure cannot borrow the caller's `&mut`.
                let mut attempt_extensions = base.clone();
                let next = next.clone();
                async move {
                    let request = request.ok_or(AttemptError::NotReplayable)?;
                    let response = next
                        .run(request, &mut attempt_extensions)
                        .await
                        .map_err(AttemptError::Client)?;
                    Ok((response, attempt_extensions))
                }
            })
            .await;
        match outcome {
            Ok((response, attempt_extensions)) => {
                *extensions = attempt_extensions;
                Ok(response)
            }
            Err(AttemptError::Client(e)) => Err(e),
            Err(AttemptError::Open(e)) => {
                Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(e)))
            }
            Err(AttemptError::NotReplayable) => Err(reqwest_middleware::Error::Middleware(
                anyhow::anyhow!("the request could not be cloned for another attempt"),
            )),
        }
    }
}

/// The error of one attempt, as the driver classifies it.
#[derive(Debug)]
enum AttemptError {
    Client(reqwest_middleware::Error),
    Open(CircuitOpenError),
    NotReplayable,
}

impl From<CircuitOpenError> for AttemptError {
    fn from(e: CircuitOpenError) -> Self {
        AttemptError::Open(e)
    }
}

impl Classify for AttemptError {
    fn category(&self) -> ErrorCategory {
        match self {
            AttemptError::Client(reqwest_middleware::Error::Reqwest(e)) => e.category(),
            AttemptError::Client(reqwest_middleware::Error::Middleware(e)) => e.category(),
            AttemptError::Open(e) => e.category(),
            AttemptError::NotReplayable => ErrorCategory::Configuration,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Client(reqwest_middleware::Error::Reqwest(e)) => e.retry_after(),
            AttemptError::Client(reqwest_middleware::Error::Middleware(e)) => e.retry_after(),
            AttemptError::Open(e) => e.retry_after(),
            AttemptError::NotReplayable => None,
        }
    }

    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AttemptError::Client(reqwest_middleware::Error::Reqwest(e)) => Some(e),
            AttemptError::Client(reqwest_middleware::Error::Middleware(e)) => Some(e.as_ref()),
            AttemptError::Open(e) => Some(e),
            AttemptError::NotReplayable => None,
        }
    }
}
