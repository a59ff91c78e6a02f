//! The importer against the flaky service on loopback, into a real SQLite file, on tokio's
//! paused clock: Retry-After waits, slow answers, breaker timeouts and the outage take no real
//! time, and the run is repeatable for a seed.

use resilience::flaky_service::{
    FlakyService, Outage, PermanentFault, ServiceConfig, ServiceStats,
};
use resilience::importer::{
    ImportOptions, ImportReport, Importer, DATABASE, FETCH, SERVICE, STORE,
};
use resilience::store::Store;
use resilience_core::{CircuitState, ErrorCategory, OperationSnapshot};
use std::collections::BTreeSet;
use std::time::Duration;

const RECORDS: u64 = 300;

fn service_config() -> ServiceConfig {
    ServiceConfig {
        records: RECORDS,
        seed: 7,
        fault_rate: 0.2,
        not_found_rate: 0.05,
        malformed_rate: 0.03,
        retry_after: Duration::from_secs(1),
        slow_delay: Duration::from_secs(2),
        outage: Some(Outage {
            after_requests: 120,
            duration: Duration::from_secs(3),
        }),
        ..ServiceConfig::default()
    }
}

fn options(service: &FlakyService, dir: &tempfile::TempDir) -> ImportOptions {
    ImportOptions {
        records: RECORDS,
        concurrency: 8,
        seed: Some(7),
        ..ImportOptions::new(service.url(), dir.path().join("molecules.db"))
    }
}

/// Failed attempts of the fetch operation must be exactly the faults the service served.
fn assert_metrics_match_service(fetch: &OperationSnapshot, served: &ServiceStats) {
    let by = |c: ErrorCategory| {
        fetch
            .failures_by_category
            .get(c.as_str())
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(fetch.attempts, served.requests, "one attempt per request");
    assert_eq!(
        by(ErrorCategory::Network),
        served.reset,
        "dropped connections"
    );
    assert_eq!(by(ErrorCategory::Timeout), served.slow, "slow answers");
    assert_eq!(by(ErrorCategory::RateLimit), served.rate_limited, "429s");
    assert_eq!(
        by(ErrorCategory::Unavailable),
        served.unavailable + served.outage,
        "503s, the outage's included"
    );
    assert_eq!(by(ErrorCategory::NotFound), served.not_found, "404s");
    assert_eq!(
        by(ErrorCategory::Validation),
        served.malformed,
        "corrupt records"
    );
    // Every transient fault was either retried or ended a call whose attempts ran out.
    let exhausted = fetch.failures - fetch.non_retryable - fetch.rejected;
    assert_eq!(fetch.retries + exhausted, served.transient_faults());
    assert_eq!(fetch.non_retryable, served.not_found + served.malformed);
}

#[tokio::test(start_paused = true)]
async fn imports_every_record_once_through_faults_and_an_outage() {
    let config = service_config();
    let service = FlakyService::start(config.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let importable: BTreeSet<u64> = (1..=RECORDS)
        .filter(|&id| config.is_importable(id))
        .collect();
    let not_importable: BTreeSet<u64> = (1..=RECORDS)
        .filter(|&id| !config.is_importable(id))
        .collect();
    assert!(!not_importable.is_empty() && importable.len() > 250);

    let importer = Importer::new(options(&service, &dir)).unwrap();
    let report: ImportReport = importer.run().await.unwrap();
    let served = service.stats();

    // Every importable record is in the database, exactly once, as served.
    let store = Store::open(&dir.path().join("molecules.db")).unwrap();
    let stored = store.ids().unwrap();
    assert_eq!(stored, importable.iter().copied().collect::<Vec<_>>());
    for &id in &importable {
        assert_eq!(
            store.get(id).unwrap(),
            Some(resilience::flaky_service::Molecule::catalog_entry(id))
        );
    }
    assert_eq!(report.imported, importable.len() as u64);
    assert_eq!(report.already_present, 0);

    // Records that cannot be imported are reported with their reason and asked for once
    // (besides the outage, which fails every request whatever the id).
    let failed: BTreeSet<u64> = report.failed.iter().map(|f| f.id).collect();
    assert_eq!(failed, not_importable);
    for f in &report.failed {
        let expected = match config.permanent_fault(f.id) {
            Some(PermanentFault::NotFound) => ErrorCategory::NotFound,
            Some(PermanentFault::Malformed) => ErrorCategory::Validation,
            None => unreachable!("{} is importable", f.id),
        };
        assert_eq!(f.category, expected, "record {}: {}", f.id, f.error);
    }
    for id in 1..=RECORDS {
        let asked = served.per_id[&id];
        assert_eq!(
            asked.requests - asked.transient_faults,
            1,
            "record {id} got one final answer and was never asked again: {asked:?}"
        );
    }

    // The service really was flaky, in every way.
    for (kind, n) in [
        ("503", served.unavailable),
        ("429", served.rate_limited),
        ("dropped", served.reset),
        ("slow", served.slow),
        ("outage", served.outage),
    ] {
        assert!(n > 0, "no {kind} fault served: {served:?}");
    }

    // The breaker opened during the outage, refused calls, and closed after it.
    let metrics = importer.manager().metrics();
    let fetch = metrics.get(SERVICE, FETCH).unwrap();
    assert!(
        served.outage >= 5,
        "the outage failed enough calls to open the breaker"
    );
    let (outage_start, outage_end) = service.outage_window().unwrap();
    let seen = &report.fetch_breaker;
    assert!(
        seen.iter()
            .any(|o| o.state == CircuitState::Open && o.at >= outage_start && o.at <= outage_end),
        "open during the outage {outage_start:?}..{outage_end:?}: {seen:?}"
    );
    assert_eq!(seen.first().map(|o| o.state), Some(CircuitState::Closed));
    let last = seen.last().unwrap();
    assert!(
        last.state == CircuitState::Closed && last.at >= outage_end,
        "closed after the outage: {seen:?}"
    );
    assert!(fetch.rejected > 0 && report.rejected > 0);
    let status = importer.manager().circuit_breaker_status();
    assert_eq!(
        status[&format!("{SERVICE}:{FETCH}")].state,
        CircuitState::Closed
    );

    // Retries in the metrics match the faults the service counted.
    assert_metrics_match_service(fetch, &served);
    let store_metrics = metrics.get(DATABASE, STORE).unwrap();
    assert_eq!(store_metrics.successes, importable.len() as u64);
    assert_eq!(
        report.retried,
        fetch.retries + store_metrics.retries,
        "the progress count is the metrics' count"
    );

    // A second run imports nothing new and fetches no importable record again.
    let again = Importer::new(options(&service, &dir)).unwrap();
    let second = again.run().await.unwrap();
    let served_after = service.stats();
    assert_eq!(second.imported, 0);
    assert_eq!(second.already_present, importable.len() as u64);
    assert_eq!(
        second.failed.iter().map(|f| f.id).collect::<BTreeSet<_>>(),
        not_importable
    );
    for id in &importable {
        assert_eq!(
            served_after.per_id[id], served.per_id[id],
            "record {id} fetched again"
        );
    }
    assert_eq!(store.ids().unwrap().len(), importable.len());
    service.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_clean_service_needs_no_retry_and_opens_no_breaker() {
    let config = ServiceConfig {
        records: 50,
        fault_rate: 0.0,
        not_found_rate: 0.0,
        malformed_rate: 0.0,
        ..ServiceConfig::default()
    };
    let service = FlakyService::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let importer = Importer::new(ImportOptions {
        records: 50,
        ..options(&service, &dir)
    })
    .unwrap();
    let report = importer.run().await.unwrap();
    assert_eq!(report.imported, 50);
    assert_eq!(
        (report.retried, report.requeued, report.rejected),
        (0, 0, 0)
    );
    assert_eq!(report.fetch_breaker_states(), [CircuitState::Closed]);
    assert_eq!(service.stats().requests, 50);
}

#[tokio::test(start_paused = true)]
async fn a_service_that_stays_down_is_spared_and_the_records_left_for_the_next_run() {
    let config = ServiceConfig {
        records: 40,
        outage: Some(Outage {
            after_requests: 0,
            duration: Duration::from_secs(3600),
        }),
        ..service_config()
    };
    let service = FlakyService::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let importer = Importer::new(ImportOptions {
        records: 40,
        patience: Duration::from_secs(30),
        ..options(&service, &dir)
    })
    .unwrap();
    let started = tokio::time::Instant::now();
    let report = importer.run().await.unwrap();
    let waited = started.elapsed();

    assert_eq!(report.imported, 0);
    assert!(
        report.failed.is_empty(),
        "nothing failed for good: {:?}",
        report.failed
    );
    assert_eq!(report.unfinished, (1..=40).collect::<Vec<_>>());
    assert!(report.fetch_breaker_states().contains(&CircuitState::Open));
    assert!(waited >= Duration::from_secs(30), "{waited:?}");
    // Without the breaker every record would have used all its attempts on every requeue
    // (40 x 4 x 6 requests); with it, the service saw the calls that opened it and one trial
    // call per open period.
    let served = service.stats();
    assert_eq!(served.requests, served.outage);
    assert!(served.requests < 40, "{served:?}");
    let fetch = importer.manager().metrics();
    let fetch = fetch.get(SERVICE, FETCH).unwrap();
    assert!(fetch.rejected > served.requests, "{fetch:?}");
}
