//! The smallest use of the manager: a flaky operation retried until it succeeds.
//!
//! Run with `cargo run --example quickstart`.

use resilience_core::{RetryConfig, RetryManager};
use std::time::Duration;

fn main() {
    let manager = RetryManager::builder()
        .default_config(RetryConfig {
            max_attempts: 5,
            initial_delay: Duration::from_millis(20),
            ..RetryConfig::default()
        })
        .build()
        .expect("valid settings");

    let mut attempts = 0;
    let result: Result<&str, std::io::Error> = manager.execute("demo", "flaky", || {
        attempts += 1;
        if attempts < 3 {
            Err(std::io::ErrorKind::ConnectionReset.into())
        } else {
            Ok("done")
        }
    });
    println!("result: {result:?} after {attempts} attempts");
    println!(
        "metrics: {}",
        serde_json::to_string_pretty(&manager.metrics()).expect("metrics serialise")
    );
}
