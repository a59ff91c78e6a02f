//! Breakers shared by a fleet through a real Redis (feature `redis`): registries with different
//! instance ids stand for the processes of a fleet (and one test runs a second process).
//! Time in the shared record is Redis's own, so the waits here are bounded waits for the real
//! server's clock, driven by sync rounds, never fixed sleeps.

#![cfg(feature = "redis")]

mod redis_support;

use redis_support::{raw, redis_url, unique, RedisServer};
use resilience_core::{
    BreakerControl, CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState, OpenCause,
    RedisStoreConfig, SharedBreakerStatus, StoreFallback,
};
use std::time::{Duration, Instant};

fn member(url: &str, id: &str, quorum_min: u32) -> CircuitBreakerRegistry {
    member_with(RedisStoreConfig {
        instance_id: id.into(),
        quorum_min,
        ..RedisStoreConfig::new(url)
    })
}

fn member_with(config: RedisStoreConfig) -> CircuitBreakerRegistry {
    CircuitBreakerRegistry::builder()
        .redis_store(config)
        .build()
        .expect("a registry with a Redis store")
}

/// One round of the registry's store, now.
fn sync(registry: &CircuitBreakerRegistry) -> bool {
    registry
        .stores()
        .iter()
        .all(|s| s.sync(Duration::from_secs(2)))
}

fn sync_all(fleet: &[&CircuitBreakerRegistry]) {
    for r in fleet {
        assert!(sync(r), "the store answers");
    }
}

fn config(reset_timeout: Duration) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 1,
        reset_timeout,
        ..Default::default()
    }
}

/// Opens this process's own breaker by one failure.
fn trip(registry: &CircuitBreakerRegistry, service: &str, reset_timeout: Duration) {
    let breaker = registry.get_breaker(service, "op");
    breaker.configure(&config(reset_timeout));
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(breaker.state(), CircuitState::Open);
}

fn join(fleet: &[&CircuitBreakerRegistry], service: &str, reset_timeout: Duration) {
    for r in fleet {
        r.get_breaker(service, "op")
            .configure(&config(reset_timeout));
    }
    sync_all(fleet);
}

fn admits(registry: &CircuitBreakerRegistry, service: &str) -> bool {
    registry.get_breaker(service, "op").try_acquire().is_ok()
}

/// Runs `step` (which may sync) until it is true, for at most `limit` of the server's time.
fn eventually(limit: Duration, mut step: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if step() {
            return true;
        }
    }
    false
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn a_quorum_opens_the_breaker_for_every_process_within_200_ms() {
    let Some((url, _server)) = redis_url("quorum") else {
        return;
    };
    let service = unique("quorum");
    let (a, b, c) = (
        member(&url, "a", 2),
        member(&url, "b", 2),
        member(&url, "c", 2),
    );
    join(&[&a, &b, &c], &service, LONG);

    trip(&a, &service, LONG);
    sync_all(&[&a, &b, &c]);
    assert!(admits(&c, &service), "one vote of three is no quorum");
    let view = &c.shared_status()[&format!("{service}:op")];
    assert_eq!(view.open_instances, ["a"]);
    assert_eq!(view.live_instances, 3);

    // The second vote: from here on the background sync alone (no sync call) must carry the
    // decision to every process.
    let voted = Instant::now();
    trip(&b, &service, LONG);
    let rejected = eventually(Duration::from_secs(2), || !admits(&c, &service));
    let took = voted.elapsed();
    assert!(rejected, "c never saw the quorum");
    assert!(
        took <= Duration::from_millis(200),
        "c rejected only after {took:?}"
    );
    let err = c.get_breaker(&service, "op").try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::Fleet));
    assert!(
        err.remaining() > Duration::from_secs(50),
        "{:?}",
        err.remaining()
    );
    assert!(eventually(Duration::from_millis(200), || !admits(
        &a, &service
    )));
    let view = &c.shared_status()[&format!("{service}:op")];
    assert_eq!(view.state, CircuitState::Open);
}

#[test]
fn one_process_alone_does_not_open_it_for_the_others_by_default() {
    let Some((url, _server)) = redis_url("alone") else {
        return;
    };
    let service = unique("alone");
    let (a, b) = (member(&url, "a", 2), member(&url, "b", 2));
    join(&[&a, &b], &service, LONG);
    trip(&a, &service, LONG);
    for _ in 0..3 {
        sync_all(&[&a, &b]);
    }
    assert!(admits(&b, &service), "a healthy process keeps calling");
    let view = &b.shared_status()[&format!("{service}:op")];
    assert_eq!(view.state, CircuitState::Closed);
    assert_eq!(view.open_instances, ["a"]);
    // Two processes, one vote: half of the live ones, but fewer than quorum_min.
    assert_eq!(view.live_instances, 2);
}

#[test]
fn with_quorum_min_1_any_process_opens_it_for_all() {
    let Some((url, _server)) = redis_url("any") else {
        return;
    };
    let service = unique("any");
    let (a, b) = (member(&url, "a", 1), member(&url, "b", 1));
    join(&[&a, &b], &service, LONG);
    trip(&a, &service, LONG);
    sync_all(&[&a, &b]);
    assert!(!admits(&b, &service));
}

#[test]
fn half_open_admits_half_open_max_calls_fleet_wide_and_an_expired_lease_frees_its_slot() {
    let Some((url, _server)) = redis_url("probes") else {
        return;
    };
    let service = unique("probes");
    let fleet: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            member_with(RedisStoreConfig {
                instance_id: (*id).into(),
                quorum_min: 1,
                probe_lease: Duration::from_millis(400),
                ..RedisStoreConfig::new(&url)
            })
        })
        .collect();
    let all: Vec<&CircuitBreakerRegistry> = fleet.iter().collect();
    let open = Duration::from_millis(500);
    join(&all, &service, open);
    trip(&fleet[0], &service, open);
    sync_all(&all);
    assert!(fleet.iter().all(|r| !admits(r, &service)));

    // Past the open period every process asks for a trial lease; one exists fleet-wide.
    let breakers: Vec<_> = fleet
        .iter()
        .map(|r| r.get_breaker(&service, "op"))
        .collect();
    let mut probes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while probes.is_empty() && Instant::now() < deadline {
        for (r, breaker) in fleet.iter().zip(&breakers) {
            if let Ok(permit) = breaker.try_acquire() {
                assert!(permit.is_trial());
                probes.push(permit);
            }
            sync(r);
        }
    }
    for _ in 0..3 {
        for (r, breaker) in fleet.iter().zip(&breakers) {
            if let Ok(permit) = breaker.try_acquire() {
                probes.push(permit);
            }
            sync(r);
        }
    }
    assert_eq!(
        probes.len(),
        1,
        "half_open_max_calls = 1 holds for the fleet"
    );

    // The trial call hangs (its process never reports): its lease runs out and frees the slot.
    std::mem::forget(probes.pop());
    let mut second = None;
    let deadline = Instant::now() + Duration::from_secs(3);
    'wait: while Instant::now() < deadline {
        for (r, breaker) in fleet.iter().zip(&breakers) {
            if let Ok(permit) = breaker.try_acquire() {
                second = Some(permit);
                break 'wait;
            }
            sync(r);
        }
    }
    second
        .expect("the expired lease freed its slot")
        .record_success();
    assert!(eventually(Duration::from_secs(2), || {
        fleet.iter().for_each(|r| {
            sync(r);
        });
        fleet.iter().all(|r| admits(r, &service))
    }));
    let view = &fleet[2].shared_status()[&format!("{service}:op")];
    assert_eq!(view.state, CircuitState::Closed);
}

#[test]
fn a_retry_after_seen_by_one_process_pauses_the_others() {
    let Some((url, _server)) = redis_url("pause") else {
        return;
    };
    let service = unique("pause");
    let (a, b) = (member(&url, "a", 2), member(&url, "b", 2));
    join(&[&a, &b], &service, LONG);
    let manager = resilience_core::RetryManager::builder()
        .circuit_breaker_registry(std::sync::Arc::new(a))
        .build()
        .unwrap();
    let result: Result<(), RateLimited> = manager
        .call(&service, "op")
        .max_attempts(1)
        .run(|| Err(RateLimited));
    assert!(result.is_err());
    let a = manager.circuit_breaker_registry();
    sync(a);
    sync(&b);
    let view = &b.shared_status()[&format!("{service}:op")];
    let pause = view.pause_remaining.expect("b knows of the pause");
    assert!(pause > Duration::from_secs(20) && pause <= Duration::from_secs(30));
    let err = b.get_breaker(&service, "op").try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::RetryAfter));
    assert!(err.remaining() > Duration::from_secs(20));
}

#[derive(Debug)]
struct RateLimited;
impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("429 Too Many Requests")
    }
}
impl std::error::Error for RateLimited {}
impl resilience_core::Classify for RateLimited {
    fn category(&self) -> resilience_core::ErrorCategory {
        resilience_core::ErrorCategory::RateLimit
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(30))
    }
}
impl From<resilience_core::CircuitOpenError> for RateLimited {
    fn from(_: resilience_core::CircuitOpenError) -> Self {
        RateLimited
    }
}

#[test]
fn force_open_for_the_fleet_with_a_ttl_expires() {
    let Some((url, _server)) = redis_url("force") else {
        return;
    };
    let service = unique("force");
    let (a, b) = (member(&url, "a", 2), member(&url, "b", 2));
    join(&[&a, &b], &service, LONG);
    a.force_open_shared(&service, "op", Some(Duration::from_millis(300)));
    sync_all(&[&a, &b]);
    let err = b.get_breaker(&service, "op").try_acquire().unwrap_err();
    assert!(err.is_forced());
    let view = &b.shared_status()[&format!("{service}:op")];
    assert_eq!(view.control, BreakerControl::ForcedOpen);
    assert!(view.control_remaining.is_some());
    assert!(eventually(Duration::from_secs(3), || {
        sync_all(&[&a, &b]);
        admits(&a, &service) && admits(&b, &service)
    }));
    assert_eq!(
        b.shared_status()[&format!("{service}:op")].control,
        BreakerControl::Auto
    );
}

#[test]
fn results_of_an_older_generation_change_nothing() {
    let Some((url, _server)) = redis_url("fencing") else {
        return;
    };
    let service = unique("fencing");
    let a = member(&url, "a", 1);
    let open = Duration::from_millis(100);
    join(&[&a], &service, open);
    trip(&a, &service, open);
    sync(&a);
    let breaker = a.get_breaker(&service, "op");
    let mut probe = None;
    let deadline = Instant::now() + Duration::from_secs(3);
    while probe.is_none() && Instant::now() < deadline {
        probe = breaker.try_acquire().ok();
        sync(&a);
    }
    let key = format!("{service}:op");
    let generation = a.shared_status()[&key].generation;
    // An operator's command and its end: two new generations, still half-open.
    a.disable_shared(&service, "op", None);
    sync(&a);
    a.clear_shared_control(&service, "op");
    sync(&a);
    let now = a.shared_status()[&key].clone();
    assert_eq!(now.generation, generation + 2);
    // The trial call of the old generation fails: it must not re-open the breaker.
    probe.unwrap().record_failure();
    sync(&a);
    let after = &a.shared_status()[&key];
    assert_eq!(
        after.generation, now.generation,
        "the stale result was ignored"
    );
    assert_eq!(after.state, CircuitState::HalfOpen);
}

#[test]
fn calls_go_on_while_redis_is_down_and_the_shared_state_is_reseeded_when_it_returns() {
    let Some(mut server) = RedisServer::start_own("outage") else {
        return;
    };
    let url = server.url();
    let service = unique("outage");
    let healthy = unique("healthy");
    let (a, b) = (member(&url, "a", 1), member(&url, "b", 1));
    join(&[&a, &b], &service, LONG);
    join(&[&a, &b], &healthy, LONG);
    trip(&a, &service, LONG);
    sync_all(&[&a, &b]);
    assert!(!admits(&b, &service));

    server.kill();
    assert!(!sync(&b), "the round fails");
    // Local fallback: b's own breaker (closed) decides; calls run with no wait on the network.
    let breaker = b.get_breaker(&healthy, "op");
    for _ in 0..100 {
        let started = Instant::now();
        let permit = breaker.try_acquire().unwrap();
        permit.record_success();
        assert!(started.elapsed() < Duration::from_millis(50));
    }
    assert!(
        admits(&b, &service),
        "the fleet's decision waits for the store"
    );
    assert!(b.store_fallbacks() >= 2, "one episode per breaker");
    let view = &b.shared_status()[&format!("{service}:op")];
    assert!(!view.reachable);
    let fallbacks = b.store_fallbacks();
    assert!(!sync(&b));
    assert_eq!(b.store_fallbacks(), fallbacks, "one count per episode");

    server.restart();
    assert_eq!(
        raw(&url, &["EXISTS", &format!("rsl:v1:{{cb:{service}:op}}")]),
        ":0\r\n"
    );
    assert!(eventually(Duration::from_secs(5), || sync(&a) && sync(&b)));
    // a still knew the fleet had it open: the record is re-created open.
    assert_eq!(
        raw(&url, &["EXISTS", &format!("rsl:v1:{{cb:{service}:op}}")]),
        ":1\r\n"
    );
    assert!(!admits(&b, &service));
    let newcomer = member(&url, "c", 1);
    newcomer.get_breaker(&service, "op");
    sync(&newcomer);
    assert!(!admits(&newcomer, &service));
}

#[test]
fn fail_closed_rejects_while_the_store_is_unreachable() {
    let Some(mut server) = RedisServer::start_own("fail-closed") else {
        return;
    };
    let url = server.url();
    let service = unique("fail-closed");
    let a = member_with(RedisStoreConfig {
        instance_id: "a".into(),
        fallback: StoreFallback::FailClosed,
        ..RedisStoreConfig::new(&url)
    });
    join(&[&a], &service, LONG);
    assert!(admits(&a, &service));
    server.kill();
    assert!(!sync(&a));
    let err = a.get_breaker(&service, "op").try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::StoreUnavailable));
    server.restart();
    assert!(eventually(Duration::from_secs(5), || sync(&a)));
    assert!(admits(&a, &service));
}

#[test]
fn a_restart_of_every_process_keeps_an_open_breaker_open() {
    let Some((url, _server)) = redis_url("restart") else {
        return;
    };
    let service = unique("restart");
    {
        let (a, b) = (member(&url, "a", 1), member(&url, "b", 1));
        join(&[&a, &b], &service, LONG);
        trip(&a, &service, LONG);
        sync_all(&[&a, &b]);
        assert!(!admits(&b, &service));
    }
    let (a, b) = (member(&url, "a", 1), member(&url, "b", 1));
    join(&[&a, &b], &service, LONG);
    assert!(!admits(&a, &service));
    assert!(!admits(&b, &service));
    assert_eq!(
        a.shared_status()[&format!("{service}:op")].state,
        CircuitState::Open
    );
}

/// The child process of the next test: a fleet member that votes open, then syncs until told
/// to stop. Does nothing when run as an ordinary test.
#[test]
fn fleet_member_process() {
    let (Ok(url), Ok(service)) = (
        std::env::var("RSL_FLEET_CHILD_URL"),
        std::env::var("RSL_FLEET_CHILD_SERVICE"),
    ) else {
        return;
    };
    let me = member(&url, "child", 2);
    trip(&me, &service, LONG);
    sync(&me);
    println!("VOTED");
    // Alive (and syncing in the background) until the parent closes stdin.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn processes_of_a_fleet_open_it_together() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let Some((url, _server)) = redis_url("processes") else {
        return;
    };
    let service = unique("processes");
    let (parent, observer) = (member(&url, "parent", 2), member(&url, "observer", 2));
    join(&[&parent, &observer], &service, LONG);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fleet_member_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RSL_FLEET_CHILD_URL", &url)
        .env("RSL_FLEET_CHILD_SERVICE", &service)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("VOTED"))));
    sync_all(&[&parent, &observer]);
    assert!(
        admits(&observer, &service),
        "one process of three is no quorum"
    );

    trip(&parent, &service, LONG);
    let voted = Instant::now();

    assert!(eventually(Duration::from_secs(2), || !admits(
        &observer, &service
    )));
    assert!(
        voted.elapsed() <= Duration::from_millis(200),
        "{:?}",
        voted.elapsed()
    );
    let view = &observer.shared_status()[&format!("{service}:op")];
    assert_eq!(view.state, CircuitState::Open);
    assert_eq!(view.live_instances, 3);
    // Votes are those of the current generation: the opening started a new one, so they are
    // re-cast round by round; none but the two voters' can be there.
    assert!(view
        .open_instances
        .iter()
        .all(|v| v == "child" || v == "parent"));
    drop(child.stdin.take());
    let _ = child.wait();
}

#[test]
fn a_record_recreated_after_an_outage_of_redis_leaves_a_locally_reopened_breaker_open() {
    let Some(mut server) = RedisServer::start_own("recreated") else {
        return;
    };
    let url = server.url();
    let a = member(&url, "a", 1);
    let open = Duration::from_millis(200);
    let service = unique("recreated");
    join(&[&a], &service, open);
    let breaker = a.get_breaker(&service, "op");
    breaker.try_acquire().unwrap().record_failure();
    sync(&a);
    assert_eq!(
        a.shared_status()[&format!("{service}:op")].state,
        CircuitState::Open
    );

    server.kill();
    assert!(!sync(&a));
    // The service is still down: the local breaker's own trial call fails, and it reopens.
    let deadline = Instant::now() + Duration::from_secs(3);
    let trial = loop {
        if let Ok(p) = breaker.try_acquire() {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the local breaker never went half-open"
        );
    };
    trial.record_failure();
    assert_eq!(breaker.state(), CircuitState::Open);

    // Redis returns empty: the record is re-created, which says nothing about the service.
    server.restart();
    assert!(eventually(Duration::from_secs(5), || sync(&a)));
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "the re-creation closed the local breaker"
    );
    // Its vote (quorum_min 1) opens the fleet's breaker again.
    assert!(eventually(Duration::from_secs(2), || {
        sync(&a);
        a.shared_status()[&format!("{service}:op")].state == CircuitState::Open
    }));
}

#[test]
fn a_record_overwritten_with_another_type_falls_back_that_breaker_alone() {
    let Some((url, _server)) = redis_url("overwritten") else {
        return;
    };
    let prefix = unique("overwritten");
    let a = member(&url, "a", 1);
    // More breakers than one pipelined chunk (64) holds, so that the victim has neighbours in
    // its own chunk and in others.
    let services: Vec<String> = (0..150).map(|i| format!("{prefix}-{i}")).collect();
    for service in &services {
        a.get_breaker(service, "op");
    }
    assert!(sync(&a));
    let victim = &services[70];
    let key = format!("rsl:v1:{{cb:{victim}:op}}");
    assert_eq!(raw(&url, &["SET", &key, "not a hash"]), "+OK\r\n");

    assert!(sync(&a), "the store still answers");
    let status = a.shared_status();
    for service in &services {
        let view = &status[&format!("{service}:op")];
        let expected = service != victim;
        assert_eq!(view.reachable, expected, "{service}");
        assert_eq!(view.store_fallbacks, u64::from(!expected), "{service}");
    }
    assert_eq!(a.store_fallbacks(), 1);
    assert!(admits(&a, victim), "its local breaker decides meanwhile");

    // Once the key is free again, the breaker's record is re-created and it is shared again.
    raw(&url, &["DEL", &key]);
    assert!(sync(&a));
    assert!(a.shared_status()[&format!("{victim}:op")].reachable);
    assert!(raw(&url, &["TYPE", &key]).contains("hash"));
}

#[test]
fn operator_controls_and_pauses_outlive_a_restart_of_redis() {
    let Some(mut server) = RedisServer::start_own("controls-outlive") else {
        return;
    };
    let url = server.url();
    let (forced, paused, disabled) = (unique("forced"), unique("paused"), unique("disabled"));
    let a = std::sync::Arc::new(member(&url, "a", 2));
    let b = member(&url, "b", 2);
    for service in [&forced, &paused, &disabled] {
        join(&[&a, &b], service, LONG);
    }
    a.force_open_shared(&forced, "op", Some(Duration::from_secs(600)));
    a.disable_shared(&disabled, "op", None);
    let manager = resilience_core::RetryManager::builder()
        .circuit_breaker_registry(std::sync::Arc::clone(&a))
        .build()
        .unwrap();
    let result: Result<(), RateLimited> = manager
        .call(&paused, "op")
        .max_attempts(1)
        .run(|| Err(RateLimited));
    assert!(result.is_err());
    sync_all(&[&a, &b]);
    assert!(b
        .get_breaker(&forced, "op")
        .try_acquire()
        .unwrap_err()
        .is_forced());
    assert!(!admits(&b, &paused));

    // Redis comes back empty: whoever syncs first re-creates each record from what it knew.
    server.kill();
    assert!(!sync(&a));
    server.restart();
    assert!(eventually(Duration::from_secs(5), || sync(&b)));
    sync(&a);
    let key = |service: &str| format!("rsl:v1:{{cb:{service}:op}}");
    assert!(raw(&url, &["HGET", &key(&forced), "ovr"]).contains("force_open"));
    assert!(raw(&url, &["HGET", &key(&disabled), "ovr"]).contains("disable"));
    let status = a.shared_status();
    let forced_view = &status[&format!("{forced}:op")];
    assert_eq!(forced_view.control, BreakerControl::ForcedOpen);
    let left = forced_view.control_remaining.expect("the TTL is kept");
    assert!(
        left > Duration::from_secs(500) && left <= Duration::from_secs(600),
        "{left:?}"
    );
    assert_eq!(
        status[&format!("{disabled}:op")],
        SharedBreakerStatus {
            control: BreakerControl::Disabled,
            control_remaining: None,
            ..status[&format!("{disabled}:op")].clone()
        }
    );
    let pause = status[&format!("{paused}:op")]
        .pause_remaining
        .expect("the pause is kept");
    assert!(
        pause > Duration::from_secs(20) && pause <= Duration::from_secs(30),
        "{pause:?}"
    );
    assert!(b
        .get_breaker(&forced, "op")
        .try_acquire()
        .unwrap_err()
        .is_forced());
    let err = b.get_breaker(&paused, "op").try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::RetryAfter));
}

#[test]
fn a_fleet_half_open_for_longer_than_max_half_open_wait_opens_again() {
    let Some((url, _server)) = redis_url("half-open-wait") else {
        return;
    };
    let service = unique("half-open-wait");
    let key = format!("rsl:v1:{{cb:{service}:op}}");
    let config = CircuitBreakerConfig {
        failure_threshold: 1,
        reset_timeout: Duration::from_millis(200),
        open_timeout_increment_factor: 2.0,
        // Long enough that the test sees the half-open state between two syncs.
        max_half_open_wait: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let (a, b) = (member(&url, "a", 1), member(&url, "b", 1));
    for r in [&a, &b] {
        r.get_breaker(&service, "op").configure(&config);
    }
    sync_all(&[&a, &b]);
    a.get_breaker(&service, "op")
        .try_acquire()
        .unwrap()
        .record_failure();
    sync_all(&[&a, &b]);
    assert!(raw(&url, &["HGET", &key, "state"]).contains("open"));

    // No trial call comes: the fleet's breaker goes half-open after 200 ms, then, 1 s later
    // and still not closed, open again for the next period of the ladder (400 ms).
    assert!(eventually(Duration::from_secs(5), || {
        sync_all(&[&a, &b]);
        raw(&url, &["HGET", &key, "state"]).contains("half_open")
    }));
    assert!(eventually(Duration::from_secs(5), || {
        sync_all(&[&a, &b]);
        raw(&url, &["HGET", &key, "state"]).ends_with("\r\nopen\r\n")
    }));
    assert!(raw(&url, &["HGET", &key, "timeout"]).contains("\r\n400\r\n"));
    let view = &b.shared_status()[&format!("{service}:op")];
    assert_eq!(view.state, CircuitState::Open);
    assert!(view.open_remaining.is_some());
}
