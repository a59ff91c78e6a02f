//! The tower style: a `hyper_util` client wrapped in `ResilienceLayer` (with tower's own
//! per-attempt timeout inside it) fetches molecule records from the flaky service on loopback,
//! which this example starts itself. The importer example does the same with `#[retry]`; both
//! count under one "component:operation" key and breaker.
//!
//! Run with `cargo run --example tower_client` (add a number of records, default 60).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use resilience::flaky_service::{FlakyService, Molecule, ServiceConfig};
use resilience_core::{
    CircuitBreakerConfig, ErrorCategory, ErrorClassifier, ResilienceLayer, RetryConfig,
    RetryManager,
};
use std::sync::Arc;
use std::time::Duration;
use tower::{BoxError, ServiceBuilder, ServiceExt};

/// What became of one record.
#[derive(Debug)]
enum Outcome {
    Imported,
    /// An answer that is not a success after the retries (404, or a 503 left after the last
    /// attempt).
    Refused(u16),
    /// A 200 whose body is not a record.
    Corrupt,
    /// No answer at all (every attempt dropped or timed out, or the breaker open).
    Failed(BoxError),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let records: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 60,
    };
    let service = FlakyService::start(ServiceConfig {
        records,
        fault_rate: 0.25,
        retry_after: Duration::from_millis(200), // sent as `Retry-After: 1`
        slow_delay: Duration::from_millis(1500),
        ..ServiceConfig::default()
    })
    .await?;

    let manager = Arc::new(
        RetryManager::builder()
            .default_config(RetryConfig {
                max_attempts: 4,
                initial_delay: Duration::from_millis(50),
                max_delay: Duration::from_secs(2),
                ..RetryConfig::default()
            })
            // tower's own timeout error is not one the runtime knows: without this rule the
            // attempts it cuts short count as `unknown` (still retried).
            .error_classifier(
                ErrorClassifier::default()
                    .categorize::<tower::timeout::error::Elapsed>(ErrorCategory::Timeout),
            )
            .circuit_breaker_config(CircuitBreakerConfig {
                failure_threshold: 20,
                ..CircuitBreakerConfig::default()
            })
            .build()?,
    );
    let client = ServiceBuilder::new()
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "molecules",
            "get",
        ))
        // Inside the layer: each attempt gets 500 ms; a slow answer is cut and retried.
        .timeout(Duration::from_millis(500))
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());

    let mut tasks = tokio::task::JoinSet::new();
    for id in 1..=records {
        let client = client.clone();
        let url = format!("{}/molecules/{id}", service.url());
        tasks.spawn(async move { (id, fetch(client, url).await) });
    }
    let (mut imported, mut refused, mut corrupt, mut failed) = (0, 0, 0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (id, outcome) = joined?;
        match outcome {
            Outcome::Imported => imported += 1,
            Outcome::Refused(status) => {
                refused += 1;
                println!("record {id}: answered {status}");
            }
            Outcome::Corrupt => {
                corrupt += 1;
                println!("record {id}: corrupt body");
            }
            Outcome::Failed(e) => {
                failed += 1;
                println!("record {id}: failed: {e}");
            }
        }
    }
    println!(
        "{records} records: {imported} imported, {refused} refused, {corrupt} corrupt, {failed} failed"
    );
    println!("service: {} requests served", service.stats().requests);
    println!(
        "metrics: {}",
        serde_json::to_string_pretty(&manager.metrics())?
    );
    println!(
        "breaker: {}",
        serde_json::to_string(&manager.circuit_breaker_status()["molecules:get"])?
    );
    service.shutdown().await;
    Ok(())
}

async fn fetch<S>(client: S, url: String) -> Outcome
where
    S: tower::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<hyper::body::Incoming>,
        Error = BoxError,
    >,
{
    let request = match http::Request::get(url).body(Full::new(Bytes::new())) {
        Ok(request) => request,
        Err(e) => return Outcome::Failed(e.into()),
    };
    let response = match client.oneshot(request).await {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(e),
    };
    if !response.status().is_success() {
        return Outcome::Refused(response.status().as_u16());
    }
    match response.into_body().collect().await {
        Ok(body) => match serde_json::from_slice::<Molecule>(&body.to_bytes()) {
            Ok(_) => Outcome::Imported,
            Err(_) => Outcome::Corrupt,
        },
        Err(e) => Outcome::Failed(e.into()),
    }
}
