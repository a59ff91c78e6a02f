//! What a fleet run found: the records in the workers' databases, and each mode's figures side
//! by side.

use super::worker::WorkerReport;
use super::Mode;
use crate::store::Store;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Records counted in the workers' databases.
///
/// ```
/// use resilience::fleet::Tally;
/// let tally = Tally::count([vec![1, 2, 3], vec![3, 4]], 1..=5);
/// assert_eq!((tally.rows, tally.distinct, tally.lost, tally.duplicated), (5, 4, 1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Rows in all databases.
    pub rows: u64,
    /// Distinct ids among them.
    pub distinct: u64,
    /// Ids of the expected range in no database.
    pub lost: u64,
    /// Extra copies: rows minus distinct ids (a record in two databases, or twice in one,
    /// counts once per extra copy).
    pub duplicated: u64,
    /// Distinct ids outside the expected range.
    pub stray: u64,
}

impl Tally {
    /// Counts the ids of each database (as [`Store::ids`] lists them) against `expected`.
    pub fn count(
        per_db: impl IntoIterator<Item = Vec<u64>>,
        expected: std::ops::RangeInclusive<u64>,
    ) -> Tally {
        let mut seen: HashMap<u64, u64> = HashMap::new();
        let mut rows = 0;
        for ids in per_db {
            rows += ids.len() as u64;
            for id in ids {
                *seen.entry(id).or_default() += 1;
            }
        }
        let lost = expected.clone().filter(|id| !seen.contains_key(id)).count() as u64;
        let stray = seen.keys().filter(|id| !expected.contains(id)).count() as u64;
        Tally {
            rows,
            distinct: seen.len() as u64,
            lost,
            duplicated: rows - seen.len() as u64,
            stray,
        }
    }

    /// Reads the databases at `dbs` (a missing one holds nothing).
    pub fn read(
        dbs: &[PathBuf],
        expected: std::ops::RangeInclusive<u64>,
    ) -> rusqlite::Result<Tally> {
        let mut per_db = Vec::new();
        for db in dbs {
            if db.exists() {
                per_db.push(Store::open(db)?.ids()?);
            }
        }
        Ok(Tally::count(per_db, expected))
    }
}

/// One mode's run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModeReport {
    /// Local or shared breakers.
    pub mode: Mode,
    /// Requests that reached the service during its outage (`ServiceStats::outage`).
    pub outage_requests: u64,
    /// Of those, the ones in the outage's first [`reset_timeout`](super::FleetOptions::reset_timeout):
    /// before any breaker could make a trial call, so the failures that opened the breakers
    /// (and the calls already under way). The rest are trial calls of half-open breakers.
    pub opening_requests: u64,
    /// Requests that reached the service in all.
    pub requests: u64,
    /// What the databases hold.
    pub tally: Tally,
    /// Each worker's own report.
    pub workers: Vec<WorkerReport>,
    /// When Redis was stopped, counted from the workers' start, if it was stopped while they
    /// ran.
    pub redis_killed_after: Option<Duration>,
    /// How long the mode took, from the workers' start to the last one's exit.
    pub elapsed: Duration,
}

impl ModeReport {
    /// Records imported (distinct ids in the databases).
    pub fn imported(&self) -> u64 {
        self.tally.distinct
    }

    /// Outage requests after its first [`reset_timeout`](super::FleetOptions::reset_timeout): trial
    /// calls of half-open breakers.
    pub fn trial_requests(&self) -> u64 {
        self.outage_requests - self.opening_requests
    }

    /// Fallback episodes of all workers.
    pub fn store_fallbacks(&self) -> u64 {
        self.workers.iter().map(|w| w.store_fallbacks).sum()
    }
}

/// Both modes, side by side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetReport {
    /// The workers with breakers of their own.
    pub local: ModeReport,
    /// The workers sharing their breakers.
    pub shared: ModeReport,
}

impl FleetReport {
    /// Outage requests of the shared mode over those of the local mode (0 when the local mode
    /// sent none).
    pub fn ratio(&self) -> f64 {
        if self.local.outage_requests == 0 {
            return 0.0;
        }
        self.shared.outage_requests as f64 / self.local.outage_requests as f64
    }

    /// Records lost, both modes.
    pub fn lost(&self) -> u64 {
        self.local.tally.lost + self.shared.tally.lost
    }

    /// Records duplicated, both modes.
    pub fn duplicated(&self) -> u64 {
        self.local.tally.duplicated + self.shared.tally.duplicated
    }

    /// The table: one row per mode.
    ///
    /// ```
    /// # use resilience::fleet::*;
    /// # let mode = |mode, outage_requests| ModeReport { mode, outage_requests, opening_requests: 0, requests: 0,
    /// #     tally: Tally::default(), workers: vec![], redis_killed_after: None, elapsed: Default::default() };
    /// let report = FleetReport { local: mode(Mode::Local, 90), shared: mode(Mode::Shared, 30) };
    /// assert!(report.table().lines().nth(1).unwrap().starts_with("local"));
    /// ```
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<8}{:>17}{:>10}{:>8}{:>14}{:>10}{:>6}{:>12}{:>17}{:>9}\n",
            "mode",
            "outage requests",
            "opening",
            "trials",
            "all requests",
            "imported",
            "lost",
            "duplicated",
            "store fallbacks",
            "time"
        );
        for m in [&self.local, &self.shared] {
            out.push_str(&format!(
                "{:<8}{:>17}{:>10}{:>8}{:>14}{:>10}{:>6}{:>12}{:>17}{:>8.1}s\n",
                m.mode.to_string(),
                m.outage_requests,
                m.opening_requests,
                m.trial_requests(),
                m.requests,
                m.imported(),
                m.tally.lost,
                m.tally.duplicated,
                m.store_fallbacks(),
                m.elapsed.as_secs_f64()
            ));
        }
        out
    }

    /// `outage_requests_local=N outage_requests_shared=M ratio=R lost=L duplicated=D`.
    ///
    /// ```
    /// # use resilience::fleet::*;
    /// # let mode = |mode, outage_requests| ModeReport { mode, outage_requests, opening_requests: 0, requests: 0,
    /// #     tally: Tally::default(), workers: vec![], redis_killed_after: None, elapsed: Default::default() };
    /// let report = FleetReport { local: mode(Mode::Local, 90), shared: mode(Mode::Shared, 30) };
    /// assert_eq!(report.summary_line(),
    ///     "outage_requests_local=90 outage_requests_shared=30 ratio=0.333 lost=0 duplicated=0");
    /// ```
    pub fn summary_line(&self) -> String {
        format!(
            "outage_requests_local={} outage_requests_shared={} ratio={:.3} lost={} duplicated={}",
            self.local.outage_requests,
            self.shared.outage_requests,
            self.ratio(),
            self.lost(),
            self.duplicated()
        )
    }
}
