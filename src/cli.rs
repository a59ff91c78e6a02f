//! The importer's command line: starts the flaky service on loopback (unless `--target` names a
//! real one), imports into a SQLite file with a progress bar, then prints per-operation metrics
//! and breaker status. `cargo run --example importer -- --help` lists the flags.

use crate::flaky_service::{FlakyService, Outage, ServiceConfig, ServiceStats};
use crate::importer::{ImportOptions, ImportReport, Importer, Progress, RecordEvent};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use resilience_core::RetryManager;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Imports molecule records from a flaky HTTP service into a SQLite file, with retries,
/// circuit breakers and metrics.
#[derive(Debug, Parser)]
#[command(name = "importer", version)]
pub struct Args {
    /// Records to import (ids 1..=N).
    #[arg(long, default_value_t = 2000)]
    pub records: u64,
    /// Records in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Share of requests the built-in service fails with a transient fault (503, 429, dropped
    /// connection, slow answer).
    #[arg(long, default_value_t = 0.1)]
    pub fault_rate: f64,
    /// How long the built-in service's outage lasts ("2s", "500ms"; "0" for none).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub outage: Duration,
    /// Requests before the outage starts (default: a quarter of the records).
    #[arg(long)]
    pub outage_after: Option<u64>,
    /// Seeds the service's faults and the retry jitter.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The SQLite file (default: resilience-importer/molecules.db in the temp directory).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// The breaker state file (default: next to the database: DB.breakers.json).
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// A real service's base URL (records at {URL}/molecules/{id}); no built-in service then.
    #[arg(long)]
    pub target: Option<String>,
    /// Delete the database and state file first.
    #[arg(long)]
    pub fresh: bool,
    /// The limit of one fetch attempt.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub attempt_timeout: Duration,
    /// The `Retry-After` the built-in service sends with 503 and 429, in whole seconds.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// Print a line per record event (`imported ID`, `failed ID CATEGORY`, `requeued ID`) on
    /// stdout, each after the fact (an imported line means the record is committed).
    #[arg(long)]
    pub log_records: bool,
}

/// Parses "250ms", "2s", "1.5s", "1m" or a bare number of seconds.
///
/// ```
/// use resilience::cli::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`: use ms, s or m")),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(Duration::from_secs_f64(n * scale)),
        _ => Err(format!(
            "`{text}` is not a duration such as 250ms, 2s or 1.5s"
        )),
    }
}

/// Runs the command line: `fn main() -> ExitCode { resilience::cli::main() }`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything `main` does, on a running tokio runtime.
pub async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let db = args.db.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("resilience-importer")
            .join("molecules.db")
    });
    let state_file = args
        .state_file
        .clone()
        .unwrap_or_else(|| ImportOptions::state_file_for(&db));
    if args.fresh {
        remove_database(&db, &state_file)?;
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }

    let service = match &args.target {
        Some(_) => None,
        None => Some(FlakyService::start(service_config(&args)).await?),
    };
    let target = match (&args.target, &service) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(service)) => service.url(),
        (None, None) => unreachable!("a service is started when no target is given"),
    };
    eprintln!(
        "importing {} records from {target} into {} (breaker state: {})",
        args.records,
        db.display(),
        state_file.display()
    );

    let options = ImportOptions {
        records: args.records,
        concurrency: args.concurrency,
        state_file: Some(state_file),
        attempt_timeout: args.attempt_timeout,
        seed: Some(args.seed),
        ..ImportOptions::new(target, db)
    };
    let mut importer = Importer::new(options)?;
    if args.log_records {
        importer = importer.on_record(|event| match event {
            RecordEvent::Imported(id) => println!("imported {id}"),
            RecordEvent::Failed(f) => println!("failed {} {}", f.id, f.category),
            RecordEvent::Requeued(id) => println!("requeued {id}"),
        });
    }

    let bar = progress_bar();
    let ticker = tokio::spawn(tick(bar.clone(), importer.clone()));
    let started = Instant::now();
    let result = importer.run().await;
    ticker.abort();
    update_bar(&bar, &importer);
    bar.finish();
    let report = result?;
    let elapsed = started.elapsed();

    println!();
    println!("{}", summary(&report, elapsed));
    println!();
    print!("{}", metrics_table(importer.manager()));
    println!();
    print!("{}", breaker_table(importer.manager()));
    if let Some(service) = &service {
        println!();
        println!("{}", service_line(&service.stats()));
    }
    if !report.failed.is_empty() {
        println!();
        println!("{}", failed_line(&report));
    }
    if let Some(error) = &report.state_file_error {
        eprintln!("warning: breaker state not saved: {error}");
    }
    if let Some(service) = service {
        service.shutdown().await;
    }
    if !report.unfinished.is_empty() {
        return Err(format!(
            "gave up waiting for the service: {} records left for the next run",
            report.unfinished.len()
        )
        .into());
    }
    Ok(())
}

fn service_config(args: &Args) -> ServiceConfig {
    ServiceConfig {
        records: args.records,
        seed: args.seed,
        fault_rate: args.fault_rate,
        retry_after: Duration::from_secs(args.retry_after),
        outage: (!args.outage.is_zero()).then(|| Outage {
            after_requests: args.outage_after.unwrap_or(args.records / 4),
            duration: args.outage,
        }),
        ..ServiceConfig::default()
    }
}

fn remove_database(db: &Path, state_file: &Path) -> Result<(), String> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    for path in [db, Path::new(&wal), Path::new(&shm), state_file] {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
    Ok(())
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{elapsed_precise} [{bar:40.cyan/blue}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar
}

async fn tick(bar: ProgressBar, importer: Importer) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        update_bar(&bar, &importer);
    }
}

fn update_bar(bar: &ProgressBar, importer: &Importer) {
    let p = importer.progress();
    let (imported, failed) = (Progress::get(&p.imported), Progress::get(&p.failed));
    bar.set_length(Progress::get(&p.total));
    bar.set_position(imported + failed);
    let breaker = importer
        .manager()
        .circuit_breaker_registry()
        .get_breaker(crate::importer::SERVICE, crate::importer::FETCH)
        .status()
        .state;
    bar.set_message(format!(
        "imported {imported} | retried {} | failed {failed} | requeued {} | fetch breaker {breaker}",
        Progress::get(&p.retried),
        Progress::get(&p.requeued),
    ));
}

fn summary(report: &ImportReport, elapsed: Duration) -> String {
    format!(
        "imported {} records in {:.1}s ({} already present, {} cannot be imported); \
         {} attempts retried, {} records requeued, {} calls rejected by an open breaker",
        report.imported,
        elapsed.as_secs_f64(),
        report.already_present,
        report.failed.len(),
        report.retried,
        report.requeued,
        report.rejected,
    )
}

/// The per-operation metrics as a text table.
///
/// ```
/// use resilience_core::RetryManager;
/// let manager = RetryManager::new();
/// let _: Result<(), std::io::Error> = manager.execute("db", "store", || Ok(()));
/// let table = resilience::cli::metrics_table(&manager);
/// assert!(table.contains("db:store"));
/// ```
pub fn metrics_table(manager: &RetryManager) -> String {
    let mut out = format!(
        "{:<24} {:>6} {:>6} {:>7} {:>8} {:>7} {:>8} {:>9} {:>6} {:>8} {:>8}  {}\n",
        "operation",
        "calls",
        "ok",
        "failed",
        "attempts",
        "retries",
        "rejected",
        "non-retry",
        "budget",
        "waited",
        "success",
        "failed attempts by category",
    );
    for (key, m) in &manager.metrics().operations {
        let categories: Vec<String> = m
            .failures_by_category
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        out.push_str(&format!(
            "{:<24} {:>6} {:>6} {:>7} {:>8} {:>7} {:>8} {:>9} {:>6} {:>7.1}s {:>7.1}%  {}\n",
            key,
            m.calls,
            m.successes,
            m.failures,
            m.attempts,
            m.retries,
            m.rejected,
            m.non_retryable,
            m.budget_exhausted,
            m.wait_seconds,
            m.success_rate * 100.0,
            categories.join(", "),
        ));
    }
    out
}

/// The breakers' status as a text table.
///
/// ```
/// use resilience_core::RetryManager;
/// let manager = RetryManager::new();
/// let _: Result<(), std::io::Error> = manager.execute("db", "store", || Ok(()));
/// assert!(resilience::cli::breaker_table(&manager).contains("CLOSED"));
/// ```
pub fn breaker_table(manager: &RetryManager) -> String {
    let mut out = format!(
        "{:<24} {:<10} {:>8} {:>12}\n",
        "breaker", "state", "failures", "open timeout"
    );
    for (key, s) in manager.circuit_breaker_status() {
        out.push_str(&format!(
            "{:<24} {:<10} {:>8} {:>11.2}s\n",
            key,
            s.state.as_str(),
            s.failure_count,
            s.current_timeout,
        ));
    }
    out
}

fn service_line(s: &ServiceStats) -> String {
    format!(
        "service: {} requests: {} ok, {} x 503, {} x 429, {} dropped, {} slow, {} in the outage, \
         {} x 404, {} malformed",
        s.requests,
        s.ok,
        s.unavailable,
        s.rate_limited,
        s.reset,
        s.slow,
        s.outage,
        s.not_found,
        s.malformed,
    )
}

fn failed_line(report: &ImportReport) -> String {
    let shown: Vec<String> = report
        .failed
        .iter()
        .take(8)
        .map(|f| format!("{} ({})", f.id, f.category))
        .collect();
    let more = report.failed.len().saturating_sub(shown.len());
    let mut line = format!("cannot be imported: {}", shown.join(", "));
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}
