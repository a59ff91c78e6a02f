//! Breakers shared by a fleet of processes through Redis, against breakers of their own: the
//! same import, by the same worker processes, through the same outage, twice.
//!
//! ```text
//! cargo run --example fleet -- --redis redis://127.0.0.1:6379
//! cargo run --example fleet                          # starts a throwaway redis-server from PATH
//! cargo run --example fleet -- --kill-redis-after 2s # stops Redis in the middle of the shared run
//! ```
//!
//! It starts one flaky service (every record importable, no fault but one outage: after its
//! first 400 requests it answers 503 to everything for 9 s), then 4 worker processes (this
//! program run again, `--workers` to change), each importing its own quarter of 2,000 records
//! into its own SQLite file with [`resilience::importer::Importer`], 4 records in flight each.
//! Their breakers open after 3 failures, for 200 ms, then 300, 450 and 500 ms (the ladder's
//! factor 1.5, capped at 500 ms), with one trial call per half-open period. It runs them twice
//! with a fresh service each time: with each worker's breakers its own, then with the breakers
//! shared through Redis (instance ids `worker-0`..`worker-3`, the store's default quorum: the
//! breaker opens for all when at least 2 workers and at least half of the live ones have it
//! open, so that one sick worker alone never stops the others). Then it reads every database
//! and prints what reached the service during the outage and what was imported, lost and
//! duplicated. A run (both modes, debug build) takes about 21 s:
//!
//! ```text
//! mode      outage requests   opening  trials  all requests  imported  lost  duplicated  store fallbacks     time
//! local                  88        16      72          2088      2000     0           0                0    10.2s
//! shared                 33        16      17          2033      2000     0           0                0    11.0s
//! outage_requests_local=88 outage_requests_shared=33 ratio=0.375 lost=0 duplicated=0
//! ```
//!
//! Why these numbers. The outage's requests are of two kinds:
//!
//! - *Opening* (its first 200 ms, before any breaker may try a call): the calls each worker has
//!   in flight when the outage starts, 4 per worker, fail before any breaker can open, and they
//!   open it (3 failures). Every worker pays them in both modes: 16 and 16. Opening the breaker
//!   for all cannot recall requests already sent; it saves requests when workers meet the
//!   outage at different times, which here they do not.
//! - *Trials*: once open, a breaker lets one trial call through per open period, and a failed
//!   trial opens it again for a longer period. Over 9 s that is about 18 trials (at 0.2, 0.5,
//!   0.95, 1.45 s, then every 0.5 s and a little). With local breakers every worker makes its
//!   own: 4 x 18 = 72. With shared ones the open periods and the trial leases are the fleet's
//!   (the Redis record grants `half_open_max_calls` leases for the whole fleet, and a failed
//!   trial reopens the breaker for every worker at once): 17 for all of them.
//!
//! So the ratio is (W·c + T) / (W·c + W·T) for W workers with c calls in flight and T trials
//! in the outage: (16 + 17) / (16 + 72) = 0.375 here. It tends to 1/W as the outage grows and
//! to 1 as it shrinks to the opening burst. Nothing is lost (a record waits in its worker's
//! queue while the breaker is open, and a worker reruns its importer until its database holds
//! its whole partition) and nothing is duplicated (the partitions are disjoint and an insert
//! of a present id does nothing).
//!
//! With `--kill-redis-after 2s` Redis is stopped (`SHUTDOWN NOSAVE`) 2 s into the shared run,
//! while the service is still down: the workers' next sync round fails within its 50 ms
//! timeout and every breaker falls back to the worker's own (`StoreFallback::Local`; the
//! table's "store fallbacks" counts the episodes, one per breaker per worker). From then on
//! each worker makes its own trial calls, so the shared run's outage requests approach the
//! local run's (79 against 88, and 86 against 87, in two runs); the workers still finish, with
//! nothing lost or duplicated.
//!
//! The exit status is non-zero when a record is lost or duplicated, a worker fails, or no Redis
//! can be had (without `--redis` and without `redis-server` on `PATH` it says so and exits
//! with status 2). The code is in [`resilience::fleet`]; `tests/fleet_example.rs` checks these
//! claims on a smaller scenario.

fn main() -> std::process::ExitCode {
    resilience::fleet::cli::main()
}
