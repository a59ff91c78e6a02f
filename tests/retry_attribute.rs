//! Behaviour of the code `#[retry]` generates, run against the real runtime. Each function gets
//! its manager through `manager = …`, with a `ManualClock`, so waits are recorded instead of
//! slept and breakers open and close on the test's command.

use resilience_core::{
    retry, CircuitOpenError, Classify, ErrorCategory, ManualClock, RetryManager,
};
use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn manager(clock: &ManualClock) -> RetryManager {
    RetryManager::builder()
        .clock(clock.clone())
        .seed(7)
        .build()
        .expect("valid manager")
}

fn reset() -> io::Error {
    io::ErrorKind::ConnectionReset.into()
}

#[derive(Debug, Classify)]
enum FetchError {
    #[classify(Network)]
    Reset,
    #[classify(Validation)]
    BadId,
    #[classify(RateLimit, retry_after = wait)]
    Busy { wait: Duration },
    #[classify(Unavailable)]
    Open(CircuitOpenError),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for FetchError {}
impl From<CircuitOpenError> for FetchError {
    fn from(e: CircuitOpenError) -> Self {
        FetchError::Open(e)
    }
}

#[retry(component = "test", operation = "flaky", max_attempts = 4, initial_delay = "100ms",
        backoff_factor = 2.0, jitter_factor = 0.0, manager = manager)]
fn flaky(manager: &RetryManager, calls: &Cell<u32>, succeed_on: u32) -> Result<u32, io::Error> {
    calls.set(calls.get() + 1);
    if calls.get() < succeed_on {
        return Err(reset());
    }
    Ok(calls.get())
}

#[test]
fn sync_fn_is_retried_with_the_configured_backoff() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let calls = Cell::new(0);
    assert_eq!(flaky(&m, &calls, 3).unwrap(), 3);
    assert_eq!(calls.get(), 3);
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(100), Duration::from_millis(200)]
    );
    let metrics = m.metrics();
    let op = metrics
        .get("test", "flaky")
        .expect("metrics of the call site");
    assert_eq!((op.calls, op.attempts, op.retries), (1, 3, 2));
}

#[test]
fn exhausted_call_returns_the_last_error_as_it_was() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let calls = Cell::new(0);
    let err = flaky(&m, &calls, 100).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(calls.get(), 4, "max_attempts counts every attempt");
    assert_eq!(clock.sleeps().len(), 3);
}

#[retry(component = "test", operation = "question_mark", max_attempts = 3, initial_delay = 0, manager = manager)]
fn question_mark(manager: &RetryManager, inputs: &mut Vec<&'static str>) -> Result<u32, io::Error> {
    // `?` ends the attempt, not the call: the next attempt takes the next input.
    let input = inputs
        .pop()
        .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
    let n: u32 = input.parse().map_err(|_| reset())?;
    Ok(n)
}

#[test]
fn question_mark_and_return_end_one_attempt() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let mut inputs = vec!["42", "x", "y"];
    assert_eq!(question_mark(&m, &mut inputs).unwrap(), 42);
    assert!(inputs.is_empty());
    assert!(
        clock.sleeps().is_empty(),
        "a zero delay does not call the sleeper"
    );
}

#[retry(component = "test", operation = "classified", max_attempts = 5, initial_delay = "10ms",
        max_delay = "2s", jitter_factor = 0, manager = manager)]
fn classified(manager: &RetryManager, errors: &mut Vec<FetchError>) -> Result<(), FetchError> {
    match errors.pop() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[test]
fn non_retryable_errors_stop_at_once() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let mut errors = vec![FetchError::Reset, FetchError::BadId];
    assert!(matches!(
        classified(&m, &mut errors),
        Err(FetchError::BadId)
    ));
    assert_eq!(errors.len(), 1, "the validation error was not retried");
    assert!(clock.sleeps().is_empty());
}

#[test]
fn retry_after_from_the_derive_replaces_the_delay_capped_at_max_delay() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let mut errors = vec![
        FetchError::Busy {
            wait: Duration::from_secs(30),
        },
        FetchError::Busy {
            wait: Duration::from_millis(750),
        },
        FetchError::Reset,
    ];
    classified(&m, &mut errors).unwrap();
    assert_eq!(
        clock.sleeps(),
        [
            Duration::from_millis(10),
            Duration::from_millis(750),
            Duration::from_secs(2)
        ]
    );
}

#[retry(component = "test", operation = "breaker", max_attempts = 1,
        circuit_breaker(failure_threshold = 2, reset_timeout = "10s", max_open_timeout = "1m"),
        manager = manager)]
fn guarded(manager: &RetryManager, calls: &Cell<u32>, fail: bool) -> Result<(), FetchError> {
    calls.set(calls.get() + 1);
    if fail {
        Err(FetchError::Reset)
    } else {
        Ok(())
    }
}

#[test]
fn breaker_configured_by_the_attribute_opens_and_closes() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let calls = Cell::new(0);
    assert!(matches!(guarded(&m, &calls, true), Err(FetchError::Reset)));
    assert!(matches!(guarded(&m, &calls, true), Err(FetchError::Reset)));
    // Two failures reached the attribute's threshold: the body no longer runs.
    match guarded(&m, &calls, false) {
        Err(FetchError::Open(open)) => {
            assert_eq!((open.service(), open.operation()), ("test", "breaker"));
            assert_eq!(open.remaining(), Duration::from_secs(10));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(calls.get(), 2);
    assert_eq!(m.metrics().get("test", "breaker").unwrap().rejected, 1);
    // After the attribute's reset_timeout, a probe runs and closes the breaker.
    clock.advance(Duration::from_secs(10));
    guarded(&m, &calls, false).unwrap();
    guarded(&m, &calls, false).unwrap();
    assert_eq!(calls.get(), 4);
}

#[retry(component = "test", operation = "unguarded", max_attempts = 1, circuit_breaker = false,
        manager = manager)]
fn unguarded(manager: &RetryManager, calls: &Cell<u32>) -> Result<(), io::Error> {
    // io::Error has no From<CircuitOpenError>: without a breaker it needs none.
    calls.set(calls.get() + 1);
    Err(reset())
}

#[test]
fn breaker_off_never_rejects() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let calls = Cell::new(0);
    for _ in 0..20 {
        assert!(unguarded(&m, &calls).is_err());
    }
    assert_eq!(calls.get(), 20);
    assert_eq!(m.metrics().get("test", "unguarded").unwrap().rejected, 0);
}

#[retry(component = "test", operation = "deadline", max_attempts = 10, initial_delay = "1s",
        backoff_factor = 1, jitter_factor = 0, max_elapsed = "2500ms", manager = manager)]
fn with_deadline(manager: &RetryManager, calls: &Cell<u32>) -> Result<(), io::Error> {
    calls.set(calls.get() + 1);
    Err(reset())
}

#[test]
fn max_elapsed_of_the_attribute_ends_the_retries() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let calls = Cell::new(0);
    assert!(with_deadline(&m, &calls).is_err());
    // Waits at 1 s and 2 s fit in 2.5 s; a third would end at 3 s.
    assert_eq!(calls.get(), 3);
    assert_eq!(clock.sleeps().len(), 2);
}

#[retry(max_attempts = 2, initial_delay = 0, manager = manager)]
fn defaults_name_the_site(manager: &RetryManager) -> Result<(), io::Error> {
    Err(reset())
}

#[test]
fn component_defaults_to_the_module_path_and_operation_to_the_fn_name() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    assert!(defaults_name_the_site(&m).is_err());
    let metrics = m.metrics();
    let op = metrics
        .get(module_path!(), "defaults_name_the_site")
        .expect("keyed by module path and function name");
    assert_eq!(op.attempts, 2);
}

static EVALUATIONS: AtomicU32 = AtomicU32::new(0);

fn counted(m: &RetryManager) -> &RetryManager {
    EVALUATIONS.fetch_add(1, Ordering::Relaxed);
    m
}

#[retry(component = "test", operation = "manager_once", max_attempts = 3, initial_delay = 0,
        manager = counted(m))]
fn manager_once(m: &RetryManager) -> Result<(), io::Error> {
    Err(reset())
}

#[test]
fn manager_expression_is_evaluated_once_per_call() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    assert!(manager_once(&m).is_err());
    assert_eq!(EVALUATIONS.load(Ordering::Relaxed), 1);
    assert_eq!(m.metrics().get("test", "manager_once").unwrap().attempts, 3);
}

#[retry(component = "test", operation = "full_jitter", max_attempts = 6, initial_delay = "1s",
        max_delay = "8s", jitter = "full", manager = manager)]
fn full_jitter(manager: &RetryManager) -> Result<(), io::Error> {
    Err(reset())
}

#[test]
fn jitter_strategy_is_applied() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    assert!(full_jitter(&m).is_err());
    let bases = [1, 2, 4, 8, 8].map(Duration::from_secs);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 5);
    for (sleep, base) in sleeps.iter().zip(bases) {
        assert!(
            *sleep < base,
            "full jitter waits up to the base: {sleep:?} vs {base:?}"
        );
    }
    assert!(
        sleeps.iter().any(|s| *s < Duration::from_millis(900)),
        "{sleeps:?}"
    );
}

// Methods: the receiver is borrowed again on every attempt.
struct Client {
    manager: RetryManager,
    failures_left: Cell<u32>,
    log: Vec<u32>,
}

impl Client {
    #[retry(component = "client", operation = "get", max_attempts = 5, initial_delay = 0,
            manager = &self.manager)]
    fn get(&self, id: u32) -> Result<u32, FetchError> {
        if self.failures_left.get() > 0 {
            self.failures_left.set(self.failures_left.get() - 1);
            return Err(FetchError::Reset);
        }
        Ok(id * 2)
    }

    #[retry(component = "client", operation = "push", max_attempts = 5, initial_delay = 0,
            circuit_breaker = false, manager = RetryManager::new())]
    fn push(&mut self, value: u32) -> Result<usize, io::Error> {
        self.log.push(value);
        if self.log.len() < 3 {
            return Err(reset());
        }
        Ok(self.log.len())
    }
}

#[test]
fn methods_are_retried_with_their_receiver() {
    let mut client = Client {
        manager: manager(&ManualClock::new()),
        failures_left: Cell::new(2),
        log: Vec::new(),
    };
    assert_eq!(client.get(21).unwrap(), 42);
    assert_eq!(
        client
            .manager
            .metrics()
            .get("client", "get")
            .unwrap()
            .attempts,
        3
    );
    assert_eq!(client.push(7).unwrap(), 3);
    assert_eq!(
        client.log,
        [7, 7, 7],
        "each attempt mutated the same receiver"
    );
}

trait Store {
    fn load(&self, m: &RetryManager, key: &str) -> Result<String, io::Error>;
}

struct Flaky(Cell<u32>);

impl Store for Flaky {
    #[retry(component = "store", operation = "load", initial_delay = 0, manager = m)]
    fn load(&self, m: &RetryManager, key: &str) -> Result<String, io::Error> {
        self.0.set(self.0.get() + 1);
        if self.0.get() == 1 {
            return Err(reset());
        }
        Ok(key.to_uppercase())
    }
}

#[test]
fn trait_impl_methods_are_retried() {
    let m = manager(&ManualClock::new());
    let store = Flaky(Cell::new(0));
    assert_eq!(store.load(&m, "k").unwrap(), "K");
    assert_eq!(store.0.get(), 2);
}

#[retry(component = "test", operation = "generic", max_attempts = 3, initial_delay = 0, manager = m)]
fn parse_all<T, I>(m: &RetryManager, items: I, attempts: &Cell<u32>) -> Result<Vec<T>, io::Error>
where
    T: std::str::FromStr,
    I: IntoIterator<Item = &'static str> + Clone,
{
    attempts.set(attempts.get() + 1);
    if attempts.get() < 2 {
        return Err(reset());
    }
    items
        .clone()
        .into_iter()
        .map(|s| {
            s.parse()
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
        })
        .collect()
}

#[retry(component = "test", operation = "impl_trait", max_attempts = 2, initial_delay = 0, manager = m)]
fn describe(
    m: &RetryManager,
    value: impl std::fmt::Display,
    n: &Cell<u32>,
) -> Result<impl std::fmt::Display, io::Error> {
    n.set(n.get() + 1);
    if n.get() == 1 {
        return Err(reset());
    }
    Ok(format!("<{value}>"))
}

#[test]
fn generic_and_impl_trait_functions_are_retried() {
    let m = manager(&ManualClock::new());
    let attempts = Cell::new(0);
    let parsed: Vec<u8> = parse_all(&m, ["1", "2"], &attempts).unwrap();
    assert_eq!((parsed, attempts.get()), (vec![1, 2], 2));
    let n = Cell::new(0);
    assert_eq!(describe(&m, 5, &n).unwrap().to_string(), "<5>");
    assert_eq!(n.get(), 2);
}

#[retry(component = "test", operation = "borrowed", max_attempts = 2, initial_delay = 0, manager = m)]
fn first_word<'a>(m: &RetryManager, text: &'a str) -> Result<&'a str, io::Error> {
    text.split_whitespace()
        .next()
        .ok_or_else(|| io::ErrorKind::InvalidInput.into())
}

#[test]
fn lifetimes_in_the_signature_are_kept() {
    let m = manager(&ManualClock::new());
    let text = String::from("hello world");
    assert_eq!(first_word(&m, &text).unwrap(), "hello");
    assert_eq!(
        first_word(&m, " ").unwrap_err().category(),
        ErrorCategory::Validation
    );
}

#[test]
fn attribute_keeps_doc_comments_and_visibility() {
    mod inner {
        /// Documented.
        #[retry(max_attempts = 1)]
        pub(crate) fn visible() -> Result<u8, std::io::Error> {
            Ok(1)
        }
        use resilience_core::retry;
    }
    assert_eq!(inner::visible().unwrap(), 1);
}

// Regression guard for the driver's shared counters: two managers, one call site.
#[test]
fn a_call_site_used_with_two_managers_reports_to_each() {
    let (a, b) = (manager(&ManualClock::new()), manager(&ManualClock::new()));
    assert!(defaults_name_the_site(&a).is_err());
    assert!(defaults_name_the_site(&b).is_err());
    assert!(defaults_name_the_site(&b).is_err());
    let key = (module_path!(), "defaults_name_the_site");
    assert_eq!(a.metrics().get(key.0, key.1).unwrap().calls, 1);
    assert_eq!(b.metrics().get(key.0, key.1).unwrap().calls, 2);
}

#[test]
fn arc_manager_is_accepted() {
    #[retry(component = "test", operation = "arc", max_attempts = 2, initial_delay = 0, manager = Arc::clone(&m))]
    fn via_arc(m: Arc<RetryManager>) -> Result<(), io::Error> {
        Err(reset())
    }
    let m = Arc::new(manager(&ManualClock::new()));
    assert!(via_arc(Arc::clone(&m)).is_err());
    assert_eq!(m.metrics().get("test", "arc").unwrap().attempts, 2);
}
