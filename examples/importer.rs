//! The main example: imports 2,000 molecule records from a flaky service on loopback (503 with
//! Retry-After, 429, dropped connections, slow answers, corrupt records, unknown ids and an
//! outage) into a SQLite file, with retries, circuit breakers and metrics.
//!
//! Run with `cargo run --example importer` (add `-- --help` for the flags). A second run
//! resumes: it imports nothing the database already holds (`--fresh` starts over).

fn main() -> std::process::ExitCode {
    resilience::cli::main()
}
