//! The importer's breaker state file (`<db>.breakers.json`): a run that opens the fetch breaker
//! leaves it in the file, and the next importer built on that file starts with it open, sparing
//! a service that is still down. On tokio's paused clock; the breakers' open time (an hour) is
//! far beyond the real time the test takes, so the wall-clock dates in the file cannot expire.

use resilience::flaky_service::{FlakyService, Outage, ServiceConfig};
use resilience::importer::{ImportOptions, Importer, FETCH, SERVICE};
use resilience_core::{CircuitBreakerConfig, CircuitState};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RECORDS: u64 = 20;
const OPEN_FOR: Duration = Duration::from_secs(3600);

fn options(service: &FlakyService, db: &Path) -> ImportOptions {
    let defaults = ImportOptions::new(service.url(), db);
    ImportOptions {
        records: RECORDS,
        concurrency: 4,
        seed: Some(3),
        patience: Duration::from_secs(10),
        breaker: CircuitBreakerConfig {
            reset_timeout: OPEN_FOR,
            max_open_timeout: OPEN_FOR,
            ..defaults.breaker.clone()
        },
        ..defaults
    }
}

/// The fetch breaker's entry in the state file.
fn fetch_entry(state_file: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(state_file).expect("the state file was written");
    let file: serde_json::Value = serde_json::from_str(&text).expect("the state file is JSON");
    file["breakers"][SERVICE][FETCH].clone()
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_saved_and_the_next_run_starts_with_it_open() {
    let service = FlakyService::start(ServiceConfig {
        records: RECORDS,
        fault_rate: 0.0,
        not_found_rate: 0.0,
        malformed_rate: 0.0,
        outage: Some(Outage {
            after_requests: 0,
            duration: Duration::from_secs(100 * 3600),
        }),
        ..ServiceConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("molecules.db");
    let state_file = ImportOptions::state_file_for(&db);
    assert_eq!(
        options(&service, &db).state_file.as_deref(),
        Some(&*state_file)
    );

    // First run: the outage opens the fetch breaker; the run gives up and saves the state.
    let first = Importer::new(options(&service, &db)).unwrap();
    let report = first.run().await.unwrap();
    assert_eq!(report.imported, 0);
    assert_eq!(report.unfinished.len() as u64, RECORDS);
    assert!(report.fetch_breaker_states().contains(&CircuitState::Open));
    assert_eq!(report.state_file_error, None);
    // Read while the importer is alive: the run itself made sure the file is written.
    let entry = fetch_entry(&state_file);
    assert_eq!(entry["state"], "OPEN", "{entry}");
    let open_until = entry["open_until_unix_ms"]
        .as_u64()
        .expect("an open-until date");
    assert!(
        open_until > unix_ms_now() + 30 * 60 * 1000,
        "open for about an hour from now: {entry}"
    );
    let requests_before = service.stats().requests;
    assert!(requests_before > 0);
    drop(first);

    // Second run on the same file: the breaker is open from the start, so the service, still
    // down, sees no request at all.
    let second = Importer::new(options(&service, &db)).unwrap();
    let restored = second
        .manager()
        .circuit_breaker_registry()
        .get_breaker(SERVICE, FETCH)
        .status();
    assert_eq!(restored.state, CircuitState::Open, "{restored:?}");
    let report = second.run().await.unwrap();
    assert_eq!(report.imported, 0);
    assert_eq!(report.unfinished.len() as u64, RECORDS);
    assert_eq!(
        report.fetch_breaker_states().first(),
        Some(&CircuitState::Open),
        "{:?}",
        report.fetch_breaker
    );
    assert_eq!(
        service.stats().requests,
        requests_before,
        "no request while open"
    );
    assert!(report.rejected > 0);

    // The file was read as it was: nothing was moved aside as unreadable.
    let siblings: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        siblings.iter().all(|name| !name.contains(".corrupt")),
        "{siblings:?}"
    );
    service.shutdown().await;
}
