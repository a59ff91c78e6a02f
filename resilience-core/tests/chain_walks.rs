//! Walks along `source()` chains end on any chain: an error that is its own source, two errors
//! that name each other, and chains longer than the walk's bound (64 links). Before, a cycle
//! hung classification, `NonRetryable::matches`, classifier rules and so the whole call.
//!
//! Each walk runs on a thread of its own under a watchdog, so a regression fails the test
//! instead of hanging the suite. The watchdog never waits when the walk ends.

use resilience_core::{
    Classify, ErrorCategory, ErrorClassifier, ManualClock, NonRetryable, RetryConfig, RetryManager,
};
use std::error::Error;
use std::fmt;
use std::io;
use std::sync::mpsc;
use std::time::Duration;

type BoxError = Box<dyn Error + Send + Sync>;

/// Runs `f` on a thread and returns its result, or fails if it has not ended in 30 s (a walk
/// takes microseconds: only a walk that never ends gets near this).
fn ends<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the chain walk did not end: it follows a cycle forever")
}

/// An error whose `source()` is itself.
#[derive(Debug)]
struct SelfLoop;

impl fmt::Display for SelfLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("I caused myself")
    }
}

impl Error for SelfLoop {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self)
    }
}

/// With [`Pong`], two errors that name each other as their source.
#[derive(Debug)]
struct Ping;

#[derive(Debug)]
struct Pong;

impl fmt::Display for Ping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ping")
    }
}

impl fmt::Display for Pong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pong")
    }
}

impl Error for Ping {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&Pong)
    }
}

impl Error for Pong {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&Ping)
    }
}

/// One link of an acyclic chain.
#[derive(Debug)]
struct Link(BoxError);

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("link")
    }
}

impl Error for Link {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

/// `links` links in front of an I/O timeout.
fn chain_to_timeout(links: usize) -> BoxError {
    (0..links).fold(
        Box::new(io::Error::from(io::ErrorKind::TimedOut)) as BoxError,
        |inner, _| Box::new(Link(inner)),
    )
}

#[test]
fn an_error_that_is_its_own_source_is_classified() {
    let (boxed, io_wrapped, retry_after) = ends(|| {
        let boxed: BoxError = Box::new(SelfLoop);
        let io_wrapped = io::Error::other(SelfLoop);
        (boxed.category(), io_wrapped.category(), boxed.retry_after())
    });
    assert_eq!(boxed, ErrorCategory::Unknown);
    assert_eq!(io_wrapped, ErrorCategory::Unknown);
    assert_eq!(retry_after, None);
}

#[test]
fn two_errors_naming_each_other_are_classified() {
    let (category, retry_after) = ends(|| {
        let boxed: Box<dyn Error> = Box::new(Ping);
        (boxed.category(), boxed.retry_after())
    });
    assert_eq!(category, ErrorCategory::Unknown);
    assert_eq!(retry_after, None);
}

#[test]
fn non_retryable_matching_ends_on_a_cycle() {
    let (on_loop, on_ping, found_in_cycle) = ends(|| {
        let mut never = NonRetryable::default();
        never.add::<std::num::ParseIntError>();
        let mut pong = NonRetryable::default();
        pong.add::<Pong>();
        (
            never.matches(&SelfLoop),
            never.matches(&Ping),
            pong.matches(&Ping),
        )
    });
    assert!(!on_loop && !on_ping);
    assert!(found_in_cycle, "a type inside the cycle is still found");
}

#[test]
fn classifier_rules_end_on_a_cycle() {
    let (unmatched, matched) = ends(|| {
        let boxed: BoxError = Box::new(Ping);
        let silent = ErrorClassifier::default().rule(|_| None);
        let pong = ErrorClassifier::default().categorize::<Pong>(ErrorCategory::Database);
        (silent.classify(&boxed), pong.classify(&boxed))
    });
    assert_eq!(unmatched, ErrorCategory::Unknown);
    assert_eq!(matched, ErrorCategory::Database);
}

#[test]
fn a_call_failing_with_a_self_referencing_error_ends() {
    let clock = ManualClock::new();
    let for_manager = clock.clone();
    let (result, attempts) = ends(move || {
        let manager = RetryManager::builder()
            .clock(for_manager)
            // Both walk the chain on every failure: the non-retryable types and the rules.
            .default_config(RetryConfig::default().never_retry::<std::num::ParseIntError>())
            .error_classifier(ErrorClassifier::default().rule(|_| None))
            .build()
            .unwrap();
        let mut attempts = 0;
        let result: Result<(), BoxError> = manager.execute("loop", "call", || {
            attempts += 1;
            Err(Box::new(SelfLoop) as BoxError)
        });
        (result.map_err(|e| e.to_string()), attempts)
    });
    // `Unknown` is retried: all three attempts ran, with a wait before each retry.
    assert_eq!(result, Err("I caused myself".to_owned()));
    assert_eq!(attempts, 3);
    assert_eq!(clock.sleeps().len(), 2);
}

#[test]
fn a_walk_follows_64_links_and_no_more() {
    // The timeout is the 64th error of the chain: found.
    assert_eq!(chain_to_timeout(63).category(), ErrorCategory::Timeout);
    // The 65th: past the bound, the chain says nothing.
    assert_eq!(chain_to_timeout(64).category(), ErrorCategory::Unknown);
}

#[test]
fn a_wrapper_and_its_first_field_are_two_errors() {
    // The wrapped error is its first field, at the wrapper's own address: not a cycle.
    #[derive(Debug)]
    struct AtSameAddress(io::Error);
    impl fmt::Display for AtSameAddress {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl Error for AtSameAddress {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    let e: BoxError = Box::new(AtSameAddress(io::ErrorKind::ConnectionReset.into()));
    assert_eq!(e.category(), ErrorCategory::Network);
}
