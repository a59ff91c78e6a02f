//! The retry storm study, in virtual time: `clients` clients each call a dependency every
//! `interval`; the dependency is fully down from `outage_start` for `outage`, then fails a
//! share of calls transiently (`flakiness`). Every call goes through the real runtime (a
//! `RetryManager` with `max_attempts` attempts, backoff and jitter, and optionally a retry
//! budget); time is tokio's paused clock, so a run of minutes of virtual time takes a moment and
//! never sleeps. The breaker is left out, so that what is measured is the retries alone.
//!
//! ```
//! use resilience::retry_storm::{simulate, Scenario};
//! let small = Scenario { clients: 5, ..Scenario::default() };
//! let with = simulate(&small, true);
//! let without = simulate(&small, false);
//! assert!(with.attempts_during_outage < without.attempts_during_outage);
//! ```

use resilience_core::{Clock, ErrorCategory, RetryBudget, RetryConfig, RetryManager, Sleep};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// What is simulated.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Clients calling the dependency.
    pub clients: usize,
    /// Time between two calls of one client.
    pub interval: Duration,
    /// When the outage starts.
    pub outage_start: Duration,
    /// How long the dependency is fully down.
    pub outage: Duration,
    /// How long the run goes on after the outage.
    pub after: Duration,
    /// The share of calls that fail transiently outside the outage, once it has begun.
    pub flakiness: f64,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Seeds the jitter and the dependency's failures.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            clients: 50,
            interval: Duration::from_millis(100),
            outage_start: Duration::from_secs(10),
            outage: Duration::from_secs(30),
            after: Duration::from_secs(30),
            flakiness: 0.05,
            max_attempts: 5,
            seed: 7,
        }
    }
}

/// What the dependency saw, and what the clients got.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Attempts that reached the dependency per second of virtual time.
    pub attempts_per_second: Vec<u64>,
    /// Attempts that reached it while it was down.
    pub attempts_during_outage: u64,
    /// Calls that succeeded after the outage.
    pub successes_after: u64,
    /// Calls made after the outage.
    pub calls_after: u64,
    /// Calls that ended without the retry they were due (budget exhausted).
    pub budget_exhausted: u64,
}

#[derive(Debug)]
struct Unavailable;

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("503 Service Unavailable")
    }
}

impl std::error::Error for Unavailable {}

impl resilience_core::Classify for Unavailable {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Unavailable
    }
}

/// tokio's clock, paused: the manager's waits and the budget's time are virtual.
#[derive(Debug)]
struct VirtualClock {
    origin: tokio::time::Instant,
}

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }
    fn unix_now(&self) -> Duration {
        self.now()
    }
    fn sleep(&self, _: Duration) {
        // The study's calls are all async.
    }
    fn sleep_async(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The dependency: down during the outage, flaky after it, counting what reaches it.
struct Dependency {
    scenario: Scenario,
    origin: tokio::time::Instant,
    per_second: Vec<u64>,
    during_outage: u64,
    rng: resilience_core::Rng,
}

impl Dependency {
    fn call(&mut self) -> Result<(), Unavailable> {
        let now = tokio::time::Instant::now().saturating_duration_since(self.origin);
        let second = now.as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
        let s = &self.scenario;
        if now >= s.outage_start && now < s.outage_start + s.outage {
            self.during_outage += 1;
            return Err(Unavailable);
        }
        if now >= s.outage_start && self.rng.next_f64() < s.flakiness {
            return Err(Unavailable);
        }
        Ok(())
    }
}

/// Runs `scenario`, with Finagle's default retry budget or without one.
pub fn simulate(scenario: &Scenario, with_budget: bool) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(run(scenario.clone(), with_budget))
}

async fn run(scenario: Scenario, with_budget: bool) -> Outcome {
    let origin = tokio::time::Instant::now();
    let manager = Rc::new(
        RetryManager::builder()
            .clock(VirtualClock { origin })
            .seed(scenario.seed)
            .default_config(RetryConfig {
                max_attempts: scenario.max_attempts,
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(5),
                budget: with_budget.then(RetryBudget::default),
                ..RetryConfig::default()
            })
            .build()
            .expect("valid study settings"),
    );
    let dependency = Rc::new(RefCell::new(Dependency {
        scenario: scenario.clone(),
        origin,
        per_second: Vec::new(),
        during_outage: 0,
        rng: resilience_core::Rng::seeded(scenario.seed ^ 0x5eed),
    }));
    let end = scenario.outage_start + scenario.outage + scenario.after;
    let after_outage = scenario.outage_start + scenario.outage;
    let results = Rc::new(RefCell::new((0u64, 0u64)));
    let local = tokio::task::LocalSet::new();
    for client in 0..scenario.clients {
        let (manager, dependency, results) = (
            Rc::clone(&manager),
            Rc::clone(&dependency),
            Rc::clone(&results),
        );
        let interval = scenario.interval;
        // Clients start spread over one interval, as independent clients would.
        let offset = interval.mul_f64(client as f64 / scenario.clients as f64);
        local.spawn_local(async move {
            let mut next = origin + offset;
            while next.saturating_duration_since(origin) < end {
                tokio::time::sleep_until(next).await;
                // Open loop, as the users of a service are: a call starts on time whether or
                // not the client's earlier calls are still retrying.
                let (manager, dependency, results) = (
                    Rc::clone(&manager),
                    Rc::clone(&dependency),
                    Rc::clone(&results),
                );
                tokio::task::spawn_local(async move {
                    let started = tokio::time::Instant::now().saturating_duration_since(origin);
                    let outcome: Result<(), Unavailable> = manager
                        .call("dependency", "get")
                        .without_circuit_breaker()
                        .run_async(|| {
                            let result = dependency.borrow_mut().call();
                            async move { result }
                        })
                        .await;
                    if started >= after_outage {
                        let mut r = results.borrow_mut();
                        r.0 += 1;
                        r.1 += u64::from(outcome.is_ok());
                    }
                });
                next += interval;
            }
        });
    }
    local.await;
    let dependency = dependency.borrow();
    let (calls_after, successes_after) = *results.borrow();
    Outcome {
        attempts_per_second: dependency.per_second.clone(),
        attempts_during_outage: dependency.during_outage,
        successes_after,
        calls_after,
        budget_exhausted: manager
            .metrics_for("dependency", "get")
            .map_or(0, |m| m.budget_exhausted),
    }
}
