//! A held (component, operation) of a manager: calls through it make no look-up.

use super::{Call, Guarded, HandleRef, RetryManager};
use crate::call::{
    admit_guarded, run_async, run_blocking, CallSpec, CallState, OperationHandle, GUARDED_SPEC,
};
use crate::{CircuitBreakerStatus, CircuitOpenError, Classify, NoJudge};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

/// One (component, operation) of a manager, resolved once; see [`RetryManager::operation`].
#[derive(Clone)]
pub struct Operation<'m> {
    pub(super) manager: &'m RetryManager,
    pub(super) handle: Arc<OperationHandle>,
}

impl Operation<'_> {
    /// As [`RetryManager::execute`], without the look-up.
    pub fn execute<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        E: Classify + From<CircuitOpenError>,
    {
        let call = CallState::new(&self.manager.engine, &self.handle, &GUARDED_SPEC);
        run_blocking(call, admit_guarded, &NoJudge, f)
    }

    /// As [`RetryManager::execute_async`], without the look-up.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let manager = RetryManager::new();
    /// let get = manager.operation("api", "get");
    /// let got: Result<u8, std::io::Error> = get.execute_async(|| async { Ok(5) }).await;
    /// assert_eq!(got.unwrap(), 5);
    /// # });
    /// ```
    pub async fn execute_async<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpenError>,
    {
        let call = CallState::new(&self.manager.engine, &self.handle, &GUARDED_SPEC);
        run_async(call, admit_guarded, &NoJudge, f).await
    }

    /// A call with per-call overrides, as [`RetryManager::call`].
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// let get = manager.operation("api", "get");
    /// let got: Result<u8, std::io::Error> = get.call().max_attempts(1).run(|| Ok(1));
    /// assert_eq!(got.unwrap(), 1);
    /// ```
    pub fn call(&self) -> Call<'_, Guarded> {
        Call {
            manager: self.manager,
            handle: HandleRef::Cached(&self.handle),
            spec: CallSpec::GUARDED,
            judge: NoJudge,
            mode: PhantomData,
        }
    }

    /// The breaker's status as of now.
    ///
    /// ```
    /// use resilience_core::{CircuitState, RetryManager};
    /// let manager = RetryManager::new();
    /// assert_eq!(manager.operation("api", "get").circuit_breaker_status().state, CircuitState::Closed);
    /// ```
    pub fn circuit_breaker_status(&self) -> CircuitBreakerStatus {
        self.handle.breaker.status()
    }
}

impl fmt::Debug for Operation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("component", &self.handle.component)
            .field("operation", &self.handle.operation)
            .finish()
    }
}
