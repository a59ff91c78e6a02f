//! The command line of `cargo run --example fleet`: `cargo run --example fleet -- --help`
//! lists the flags.

use super::{
    ping, run_mode, worker_from_env, FleetOptions, FleetReport, Mode, ModeReport, ThrowawayRedis,
};
use crate::cli::parse_duration;
use clap::Parser;
use std::process::{Command, ExitCode};
use std::time::Duration;

/// Runs importer worker processes against one flaky service with a long outage, once with
/// breakers of their own and once with breakers shared through Redis, and compares the
/// requests that reached the service during the outage.
#[derive(Debug, Parser)]
#[command(name = "fleet")]
pub struct Args {
    /// The Redis server of the shared mode (default: a throwaway redis-server from PATH, on
    /// 127.0.0.1, a free port, persistence off).
    #[arg(long)]
    pub redis: Option<String>,
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Records (ids 1..=N), split between the workers.
    #[arg(long, default_value_t = 2000)]
    pub records: u64,
    /// Records in flight in each worker.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// How long the service's outage lasts ("9s", "500ms").
    #[arg(long, default_value = "9s", value_parser = parse_duration)]
    pub outage: Duration,
    /// Requests the service answers before its outage.
    #[arg(long, default_value_t = 400)]
    pub outage_after: u64,
    /// Stop Redis (SHUTDOWN NOSAVE) this long after the shared mode's workers start ("2s"):
    /// they finish on their local breakers.
    #[arg(long, value_parser = parse_duration)]
    pub kill_redis_after: Option<Duration>,
    /// Workers whose own breaker must be open to open it for all.
    #[arg(long, default_value_t = 2)]
    pub quorum_min: u32,
    /// Share of the live workers that must have it open.
    #[arg(long, default_value_t = 0.5)]
    pub quorum_ratio: f64,
    /// Seeds the workers' retry jitter.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Args {
    /// The scenario of these flags against the Redis at `redis_url`.
    ///
    /// ```
    /// use clap::Parser;
    /// use resilience::fleet::{cli::Args, FleetOptions};
    /// // The flags' defaults are the library's.
    /// let args = Args::parse_from(["fleet"]);
    /// assert_eq!(args.options("redis://x"), FleetOptions::new("redis://x"));
    /// ```
    pub fn options(&self, redis_url: &str) -> FleetOptions {
        FleetOptions {
            workers: self.workers,
            records: self.records,
            concurrency: self.concurrency,
            outage: self.outage,
            outage_after: self.outage_after,
            kill_redis_after: self.kill_redis_after,
            quorum_min: self.quorum_min,
            quorum_ratio: self.quorum_ratio,
            seed: self.seed,
            time_limit: self.outage + Duration::from_secs(120),
            ..FleetOptions::new(redis_url)
        }
    }
}

/// The example's `main`: a worker process runs its worker; otherwise the flags are parsed, Redis
/// found or started, both modes run and the table printed, its last line
/// `outage_requests_local=N outage_requests_shared=M ratio=R lost=L duplicated=D`. Fails when a
/// record is lost or duplicated, a worker fails, or no Redis can be had.
pub fn main() -> ExitCode {
    if let Some(result) = worker_from_env() {
        return match result {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fleet worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    let (url, server, origin) = match &args.redis {
        Some(url) => (url.clone(), None, "given"),
        None => match ThrowawayRedis::start() {
            Ok(Some(server)) => (server.url(), Some(server), "a throwaway redis-server"),
            Ok(None) => {
                eprintln!(
                    "fleet: no Redis. Pass --redis redis://HOST:PORT, or put redis-server on \
                     PATH (Debian/Ubuntu: apt-get install redis-server) and the example starts \
                     a throwaway one."
                );
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("fleet: redis-server is on PATH but did not start: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    if !ping(&url) {
        eprintln!("fleet: no Redis answers PING at {url}");
        return ExitCode::FAILURE;
    }
    let options = args.options(&url);
    if let Err(e) = options.validate() {
        eprintln!("fleet: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fleet: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("fleet: cannot find this program to run its workers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let worker = |_: &super::WorkerArgs| Command::new(&exe);

    println!("{}", describe(&options, origin));
    let mut modes = Vec::new();
    for mode in [Mode::Local, Mode::Shared] {
        eprintln!(
            "{mode}: {} workers importing, outage of {:?} after {} requests...",
            options.workers, options.outage, options.outage_after
        );
        match runtime.block_on(run_mode(&options, mode, worker)) {
            Ok(report) => {
                eprintln!("{mode}: done in {:.1} s", report.elapsed.as_secs_f64());
                modes.push(report);
            }
            Err(e) => {
                eprintln!("fleet: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    drop(server);
    let shared = modes.pop().expect("two modes");
    let local = modes.pop().expect("two modes");
    let report = FleetReport { local, shared };
    println!();
    print!("{}", report.table());
    for line in notes(&options, &report) {
        println!("{line}");
    }
    println!("{}", report.summary_line());
    let incomplete = [&report.local, &report.shared]
        .iter()
        .any(|m| m.workers.iter().any(|w| !w.complete));
    if report.lost() > 0 || report.duplicated() > 0 || incomplete {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The scenario, in words.
fn describe(o: &FleetOptions, origin: &str) -> String {
    format!(
        "{} importer processes x {} records ({} in flight each) against one service that \
         answers 503 to everything for {:.1} s after its first {} requests.\n\
         Breakers: open after {} failures, for {} ms growing to {} ms, one trial call per \
         half-open period.\n\
         Shared mode: Redis at {} ({origin}); instance ids worker-0..worker-{}; a breaker opens \
         for all when at least {} workers and at least {:.0} % of the live ones have it open \
         (the store's defaults: one sick worker alone never stops the others); the open \
         periods and the trial calls are the fleet's.",
        o.workers,
        o.records,
        o.concurrency,
        o.outage.as_secs_f64(),
        o.outage_after,
        o.failure_threshold,
        o.reset_timeout.as_millis(),
        o.max_open_timeout.as_millis(),
        o.redis_url,
        o.workers.saturating_sub(1),
        o.quorum_min,
        o.quorum_ratio * 100.0,
    )
}

/// What to read in the table.
fn notes(o: &FleetOptions, report: &FleetReport) -> Vec<String> {
    let mut lines = vec![format!(
        "opening: outage requests in its first {} ms, before any breaker could try a call (the \
         failures that open the breakers, paid by every worker in both modes); trials: the \
         rest, trial calls of half-open breakers (one per worker per open period with local \
         breakers, one per open period for the whole fleet with shared ones).",
        o.reset_timeout.as_millis()
    )];
    let per = |m: &ModeReport| {
        m.workers
            .iter()
            .map(|w| w.store_fallbacks.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match report.shared.redis_killed_after {
        Some(at) => {
            lines.push(format!(
                "Redis was stopped {:.1} s into the shared run: every worker fell back to its \
                 local breakers (fallback episodes per worker: {}) and finished its partition.",
                at.as_secs_f64(),
                per(&report.shared)
            ));
            lines.push(
                "From then on each worker probed on its own, as in the local run, so the ratio \
                 says less; what counts is that nothing was lost or duplicated."
                    .to_owned(),
            );
        }
        None if o.kill_redis_after.is_some() => lines.push(
            "The workers were done before Redis was to be stopped: it was not stopped.".to_owned(),
        ),
        None => {}
    }
    lines
}
