//! Breaker state in a real file across "restarts" (a registry dropped, a new one built from the
//! same file): PEER-SCENARIOS.md PB-09..PB-11 and R4J-09's reset, bad files, failed writes,
//! several writers on one file, and the count of writes.

mod breaker_support;

use breaker_support::{cfg, record_changes, secs, Call, Capture, Harness};
use resilience_core::{
    BreakerControl, CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState, ManualClock,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use CircuitState::{Closed, HalfOpen, Open};

/// The wall-clock time of "process 1".
const W: Duration = Duration::from_secs(1_767_225_600);

fn registry_at(path: &Path, clock: &ManualClock) -> Arc<CircuitBreakerRegistry> {
    Arc::new(
        CircuitBreakerRegistry::builder()
            .clock(Arc::new(clock.clone()))
            .state_file(path)
            .build()
            .expect("a writable directory"),
    )
}

/// A "process": a manual clock whose wall clock reads `unix`, and a registry on `path`.
fn process(path: &Path, unix: Duration, config: CircuitBreakerConfig) -> Harness {
    let clock = ManualClock::with_unix_origin(unix);
    let registry = registry_at(path, &clock);
    Harness::with_registry(clock, registry, config)
}

/// Ends a process: everything queued is written when the registry goes.
fn stop(h: Harness) {
    h.registry.flush().unwrap();
    drop(h);
}

fn state_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("breakers.json");
    (dir, path)
}

fn file_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The files moved aside next to `path`.
fn moved_aside(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let mut found: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&format!("{name}.corrupt-"))
        })
        .collect();
    found.sort();
    found
}

fn writes(h: &Harness) -> u64 {
    h.registry.flush().unwrap();
    h.registry.persist_stats().unwrap().writes
}

#[test]
fn pb_09_a_failure_counts_survive_a_restart() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(5, 60.0, 1, 1));
    p1.fail_n(3);
    stop(p1);
    let p2 = process(&path, W + secs(1.0), cfg(5, 60.0, 1, 1));
    assert_eq!((p2.state(), p2.failure_count()), (Closed, 3));
    p2.fail_n(2);
    assert_eq!(p2.state(), Open);
}

#[test]
fn pb_09_b_an_open_breaker_stays_open_for_the_rest_of_its_time() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.fail_n(1);
    stop(p1);
    let json = file_json(&path);
    let record = &json["breakers"]["svc"]["op"];
    assert_eq!(json["version"], 1);
    assert_eq!(record["state"], "OPEN");
    assert_eq!(
        record["open_until_unix_ms"],
        (W + secs(60.0)).as_millis() as u64
    );

    let p2 = process(&path, W + secs(30.0), cfg(1, 60.0, 1, 1));
    assert_eq!(p2.state(), Open);
    assert_eq!(p2.ok(), Call::Rejected);
    assert_eq!(
        p2.breaker.try_acquire().unwrap_err().remaining(),
        secs(30.0)
    );
    p2.advance(29.999);
    assert_eq!(p2.ok(), Call::Rejected);
    p2.advance(0.001);
    assert_eq!(p2.ok(), Call::Ran);

    // A restart after the time has passed: half-open at once.
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.fail_n(1);
    stop(p1);
    let p2 = process(&path, W + secs(600.0), cfg(1, 60.0, 1, 1));
    assert_eq!(p2.state(), HalfOpen);
    assert_eq!(p2.ok(), Call::Ran);
    assert_eq!(p2.state(), Closed);
}

#[test]
fn pb_09_c_the_ladder_position_survives_a_restart() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.fail_n(1);
    for _ in 0..2 {
        p1.advance(p1.timeout());
        p1.fail();
    }
    assert_eq!(p1.timeout(), 135.0);
    stop(p1);
    let p2 = process(&path, W + secs(1000.0), cfg(1, 60.0, 1, 1));
    assert_eq!(p2.timeout(), 135.0);
    p2.fail(); // the probe fails
    assert_eq!((p2.state(), p2.timeout()), (Open, 202.5));
}

#[test]
fn pb_09_d_a_half_open_breaker_restores_with_no_call_in_flight() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 3));
    p1.fail_n(1);
    p1.advance(60.0);
    p1.ok(); // half-open, one success of three
    let old = Arc::clone(&p1.breaker);
    let in_flight = old.try_acquire().unwrap();
    stop(p1);
    let p2 = process(&path, W + secs(61.0), cfg(1, 60.0, 1, 3));
    let s = p2.breaker.status();
    assert_eq!(
        (s.state, s.half_open_calls, s.success_count),
        (HalfOpen, 0, 1)
    );
    assert_eq!(p2.ok(), Call::Ran, "a probe is admitted");
    assert_eq!(p2.ok(), Call::Ran);
    assert_eq!(p2.state(), Closed, "three successes in all");
    drop(in_flight); // the old process's call ends after the restart: nothing to do with p2
    assert_eq!(p2.state(), Closed);
}

#[test]
fn pb_09_e_loading_announces_nothing() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.fail_n(1);
    stop(p1);
    let clock = ManualClock::with_unix_origin(W);
    let seen = Arc::new(std::sync::Mutex::new(0));
    let counter = Arc::clone(&seen);
    let registry = CircuitBreakerRegistry::builder()
        .clock(Arc::new(clock))
        .state_file(&path)
        .on_state_change(move |_| *counter.lock().unwrap() += 1)
        .build()
        .unwrap();
    assert_eq!(registry.status()["svc:op"].state, Open, "restored eagerly");
    assert_eq!(*seen.lock().unwrap(), 0);
}

#[test]
fn pb_10_a_no_file_is_normal_and_the_file_appears_with_the_first_change() {
    let (_dir, path) = state_path();
    let h = process(&path, W, cfg(2, 60.0, 1, 1));
    assert_eq!((h.state(), h.failure_count()), (Closed, 0));
    h.ok();
    assert_eq!(writes(&h), 0);
    assert!(!path.exists(), "nothing changed, nothing written");
    h.fail();
    assert_eq!(writes(&h), 1);
    assert_eq!(
        file_json(&path)["breakers"]["svc"]["op"]["failure_count"],
        1
    );
}

#[test]
fn pb_10_b_a_missing_key_starts_closed_and_other_keys_are_kept() {
    let (_dir, path) = state_path();
    let other = process(&path, W, cfg(1, 60.0, 1, 1));
    let b = other.registry.get_breaker("other", "op");
    b.configure(&cfg(1, 60.0, 1, 1));
    b.try_acquire().unwrap().record_failure();
    stop(other);

    let h = process(&path, W, cfg(2, 60.0, 1, 1));
    assert_eq!((h.state(), h.failure_count()), (Closed, 0));
    h.fail();
    h.registry.flush().unwrap();
    let json = file_json(&path);
    assert_eq!(json["breakers"]["other"]["op"]["state"], "OPEN");
    assert_eq!(json["breakers"]["svc"]["op"]["failure_count"], 1);
}

#[test]
fn pb_10_c_bad_files_are_moved_aside_and_breakers_start_closed() {
    let valid = {
        let (_dir, path) = state_path();
        let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
        p1.fail_n(1);
        stop(p1);
        std::fs::read(&path).unwrap()
    };
    let truncated = valid[..valid.len() / 2].to_vec();
    // A newer version (99) is not a bad file: it is left alone (state_file_hardening.rs).
    let wrong_version = String::from_utf8(valid.clone())
        .unwrap()
        .replace("\"version\": 1", "\"version\": 0")
        .into_bytes();
    let bad_state = String::from_utf8(valid.clone())
        .unwrap()
        .replace("\"OPEN\"", "\"AJAR\"")
        .into_bytes();
    let cases: [(&str, Vec<u8>); 6] = [
        ("corrupt", b"{ this is not json ]".to_vec()),
        ("truncated", truncated),
        ("empty", Vec::new()),
        ("wrong version", wrong_version),
        ("unknown state", bad_state),
        ("binary garbage", (0..=255u8).cycle().take(4096).collect()),
    ];
    for (name, bytes) in cases {
        let (_dir, path) = state_path();
        std::fs::write(&path, &bytes).unwrap();
        let capture = Capture::default();
        let h = capture.during(|| process(&path, W, cfg(1, 60.0, 1, 1)));
        assert_eq!(h.state(), Closed, "{name}: starts closed");
        assert_eq!(h.registry.status().len(), 1, "{name}: nothing restored");
        let aside = moved_aside(&path);
        assert_eq!(aside.len(), 1, "{name}: the bad file is kept aside");
        assert_eq!(
            std::fs::read(&aside[0]).unwrap(),
            bytes,
            "{name}: unchanged"
        );
        assert!(
            aside[0]
                .to_str()
                .unwrap()
                .ends_with(&format!(".corrupt-{}", W.as_millis())),
            "{name}: named with a timestamp: {aside:?}"
        );
        assert!(!path.exists(), "{name}");
        let warnings: Vec<_> = capture
            .events()
            .into_iter()
            .filter(|e| e.level == tracing::Level::WARN)
            .collect();
        assert_eq!(warnings.len(), 1, "{name}: one warning");
        assert!(
            warnings[0].fields["message"].contains("moved aside"),
            "{name}"
        );
        // The breaker works and the next change writes a good file.
        h.fail_n(1);
        h.registry.flush().unwrap();
        assert_eq!(
            file_json(&path)["breakers"]["svc"]["op"]["state"],
            "OPEN",
            "{name}"
        );
    }
}

#[test]
fn pb_10_c_a_second_bad_file_in_the_same_millisecond_gets_its_own_name() {
    let (_dir, path) = state_path();
    for _ in 0..2 {
        std::fs::write(&path, b"garbage").unwrap();
        let _h = process(&path, W, cfg(1, 60.0, 1, 1));
    }
    assert_eq!(moved_aside(&path).len(), 2);
}

#[test]
fn pb_10_d_a_failed_write_is_reported_and_leaves_the_previous_file() {
    let (dir, path) = state_path();
    let h = process(&path, W, cfg(2, 60.0, 1, 1));
    h.fail();
    h.registry.flush().unwrap();
    let before = std::fs::read(&path).unwrap();

    // Running as root, permissions cannot make the directory unwritable; a lock file that is a
    // symbolic link (never followed) makes the write fail just the same.
    let lock = dir.path().join("breakers.json.lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &lock).unwrap();
    h.fail(); // opens
    let err = h.registry.flush().unwrap_err();
    assert!(err.to_string().contains("write failed"), "{err}");
    assert_eq!(err.path(), path);
    let stats = h.registry.persist_stats().unwrap();
    // The change may have been tried once on its own and once more for the flush.
    assert_eq!(stats.writes, 1);
    assert!((1..=2).contains(&stats.failed_writes), "{stats:?}");
    assert!(stats.last_error.is_some());
    let failed = stats.failed_writes;
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the previous file is intact"
    );
    // The breaker goes on in memory.
    assert_eq!(h.state(), Open);
    assert_eq!(h.ok(), Call::Rejected);

    // Once the disk is usable again, the change is written with the next flush.
    std::fs::remove_file(&lock).unwrap();
    h.registry.flush().unwrap();
    assert_eq!(file_json(&path)["breakers"]["svc"]["op"]["state"], "OPEN");
    let stats = h.registry.persist_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.last_error),
        (2, failed, None)
    );
}

#[test]
fn an_unwritable_directory_is_an_error_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = CircuitBreakerRegistry::with_state_file(file.join("breakers.json")).unwrap_err();
    assert!(
        err.to_string().contains("cannot write to the directory"),
        "{err}"
    );
    let missing = dir.path().join("missing").join("breakers.json");
    let err = CircuitBreakerRegistry::with_state_file(&missing).unwrap_err();
    assert_eq!(err.path(), missing);
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn pb_10_e_writes_are_atomic_and_leave_no_temporary_file() {
    let (dir, path) = state_path();
    let h = process(&path, W, cfg(1, 1.0, 1, 1));
    for _ in 0..50 {
        h.fail();
        h.advance(h.timeout());
        h.ok();
        h.registry.flush().unwrap();
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["breakers.json", "breakers.json.lock"]);
    assert_eq!(file_json(&path)["breakers"]["svc"]["op"]["state"], "CLOSED");
}

#[test]
fn pb_11_a_sub_second_timing_survives_a_restart() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 0.5, 1, 1));
    p1.fail_n(1);
    stop(p1);
    let p2 = process(&path, W + secs(0.4), cfg(1, 0.5, 1, 1));
    assert_eq!(p2.ok(), Call::Rejected);
    p2.advance(0.1);
    assert_eq!(p2.ok(), Call::Ran);
}

#[test]
fn pb_11_b_breakers_in_one_file_are_independent() {
    let (_dir, path) = state_path();
    let clock = ManualClock::with_unix_origin(W);
    let registry = registry_at(&path, &clock);
    let a = registry.get_breaker("svc", "a");
    let b = registry.get_breaker("svc", "b");
    let ab = registry.get_breaker("a", "b:c");
    for x in [&a, &b, &ab] {
        x.configure(&cfg(1, 60.0, 1, 1));
    }
    a.try_acquire().unwrap().record_failure();
    registry.flush().unwrap();
    b.try_acquire().unwrap().record_failure();
    b.reset();
    ab.try_acquire().unwrap().record_failure();
    registry.flush().unwrap();
    drop((a, b, ab));
    drop(registry);

    let registry = registry_at(&path, &clock);
    assert_eq!(registry.get_breaker("svc", "a").state(), Open);
    assert_eq!(registry.get_breaker("svc", "b").state(), Closed);
    assert_eq!(registry.get_breaker("a", "b:c").state(), Open);
    assert_eq!(registry.get_breaker("a:b", "c").state(), Closed);
}

#[test]
fn pb_11_c_a_deadline_in_the_future_is_clamped_to_the_timeout() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.fail_n(1);
    stop(p1);
    // The wall clock went back an hour: the breaker stays open for at most its timeout.
    let p2 = process(&path, W - secs(3600.0), cfg(1, 60.0, 1, 1));
    assert_eq!(
        p2.breaker.try_acquire().unwrap_err().remaining(),
        secs(60.0)
    );
    p2.advance(60.0);
    assert_eq!(p2.ok(), Call::Ran);
}

#[test]
fn pb_11_d_two_processes_on_one_file_never_corrupt_it() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 0.001, 1, 1));
    let p2 = process(&path, W, cfg(1, 0.001, 1, 1));
    let stop_reading = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // A reader that must always find a complete, valid file (once there is one).
        s.spawn(|| {
            while !stop_reading.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(bytes) = std::fs::read(&path) {
                    let json: serde_json::Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("a torn file: {e}"));
                    assert_eq!(json["version"], 1);
                }
            }
        });
        let writers: Vec<_> = [&p1, &p2]
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                s.spawn(move || {
                    let own = p.registry.get_breaker("own", &format!("p{i}"));
                    own.configure(&cfg(1, 0.001, 1, 1));
                    for _ in 0..100 {
                        p.fail();
                        own.try_acquire().map(|x| x.record_failure()).ok();
                        p.advance(0.001);
                        p.ok();
                        own.try_acquire().map(|x| x.record_success()).ok();
                        p.registry.flush().unwrap();
                    }
                    own.try_acquire().map(|x| x.record_failure()).ok();
                    p.registry.flush().unwrap();
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        stop_reading.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in results {
            r.unwrap();
        }
    });
    assert!(p1.registry.persist_stats().unwrap().writes >= 101);
    // Each process's own breaker is in the file: neither clobbered the other's entry.
    let json = file_json(&path);
    assert_eq!(json["breakers"]["own"]["p0"]["state"], "OPEN");
    assert_eq!(json["breakers"]["own"]["p1"]["state"], "OPEN");
    // The shared breaker holds one process's last write (last writer wins).
    assert_eq!(json["breakers"]["svc"]["op"]["state"], "CLOSED");
}

#[test]
fn no_write_happens_on_a_call_that_changes_no_state() {
    let (_dir, path) = state_path();
    let h = process(&path, W, cfg(3, 60.0, 2, 1));
    let mut expected = 0;
    // Successes on a clean closed breaker, status reads, neutral results: nothing.
    for _ in 0..10 {
        h.ok();
        h.biz();
    }
    h.registry.status();
    assert_eq!(writes(&h), expected);
    // A counted failure is a change (the count survives restarts), and so is its reset.
    h.fail();
    expected += 1;
    assert_eq!(writes(&h), expected);
    h.biz();
    assert_eq!(writes(&h), expected, "a neutral result changes nothing");
    h.ok();
    expected += 1;
    assert_eq!(writes(&h), expected, "a success that clears the count");
    h.ok();
    assert_eq!(writes(&h), expected);
    // Tripping writes; rejections while open write nothing.
    h.fail_n(3);
    h.registry.flush().unwrap();
    expected = h.registry.persist_stats().unwrap().writes;
    for _ in 0..10 {
        assert_eq!(h.ok(), Call::Rejected);
    }
    h.registry.status();
    assert_eq!(writes(&h), expected);
    // A half-open permit taken and given back changes nothing persisted... except the
    // OPEN -> HALF_OPEN change itself.
    h.advance(60.0);
    h.biz();
    expected += 1;
    assert_eq!(writes(&h), expected);
    h.biz();
    assert_eq!(writes(&h), expected);
    // Configuring is not a state change.
    h.breaker.configure(&cfg(4, 30.0, 2, 1));
    assert_eq!(writes(&h), expected);
}

#[test]
fn r4j_09_a_reset_is_written_to_the_state_file() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.fail_n(1);
    p1.registry.flush().unwrap();
    p1.registry.reset("svc", "op");
    stop(p1);
    let p2 = process(&path, W, cfg(1, 60.0, 1, 1));
    assert_eq!(
        (p2.state(), p2.failure_count(), p2.timeout()),
        (Closed, 0, 60.0)
    );
}

#[test]
fn operator_controls_survive_a_restart() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.breaker.force_open();
    p1.registry.disable("svc", "other");
    stop(p1);
    let p2 = process(&path, W + secs(1e6), cfg(1, 60.0, 1, 1));
    assert_eq!(p2.breaker.control(), BreakerControl::ForcedOpen);
    assert_eq!(p2.ok(), Call::Rejected);
    assert_eq!(
        p2.registry.get_breaker("svc", "other").control(),
        BreakerControl::Disabled
    );
}

#[test]
fn huge_timeouts_survive_a_restart_without_panicking() {
    let (_dir, path) = state_path();
    let huge = CircuitBreakerConfig {
        failure_threshold: 1,
        reset_timeout: Duration::MAX,
        max_open_timeout: Duration::MAX,
        ..CircuitBreakerConfig::default()
    };
    let p1 = process(&path, W, huge.clone());
    p1.fail_n(1);
    stop(p1);
    let p2 = process(&path, W + secs(1e9), huge);
    assert_eq!(p2.state(), Open);
    assert_eq!(p2.ok(), Call::Rejected);
}

#[test]
fn dropping_the_registry_writes_what_is_queued() {
    let (_dir, path) = state_path();
    let p1 = process(&path, W, cfg(1, 60.0, 1, 1));
    p1.fail_n(1);
    drop(p1); // no flush
    assert_eq!(file_json(&path)["breakers"]["svc"]["op"]["state"], "OPEN");
}

#[test]
fn an_opening_is_logged_as_a_warning_event() {
    let capture = Capture::default();
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    capture.during(|| h.fail_n(1));
    let info: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.level == tracing::Level::WARN)
        .collect();
    assert_eq!(info.len(), 1);
    let f = &info[0].fields;
    assert_eq!(
        (
            f["component"].as_str(),
            f["operation"].as_str(),
            f["from"].as_str(),
            f["to"].as_str()
        ),
        ("svc", "op", "CLOSED", "OPEN")
    );
    let _ = record_changes;
}
