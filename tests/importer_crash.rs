//! The importer binary killed with SIGKILL in the middle of a run: nothing it committed is lost,
//! and a rerun completes the import with every record exactly once.
//!
//! This test runs a real process in real time. It never sleeps: it reads the child's record log
//! line by line (each `imported ID` line is printed after the record's commit) and kills the
//! child after enough of them. The first run has a 30 s outage ahead of it, so it cannot finish
//! before the kill.
#![cfg(unix)]

use resilience::flaky_service::{Molecule, ServiceConfig};
use resilience::store::Store;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const RECORDS: u64 = 400;
const SEED: u64 = 11;
const KILL_AFTER: usize = 40;

/// Kills the child if the test fails before it does.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn importer(db: &Path, outage: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_importer-cli"));
    cmd.args(["--records", &RECORDS.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--concurrency", "8"])
        .args(["--fault-rate", "0.1"])
        .args(["--retry-after", "0"])
        .args(["--outage", outage])
        .args(["--outage-after", "150"])
        .arg("--db")
        .arg(db)
        .arg("--log-records")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

fn imported_ids(lines: &[String]) -> BTreeSet<u64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("imported "))
        .filter_map(|id| id.parse().ok())
        .collect()
}

#[test]
fn killed_mid_run_loses_nothing_and_a_rerun_completes_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("molecules.db");
    // The binary's service uses the default rates with the given records and seed.
    let config = ServiceConfig {
        records: RECORDS,
        seed: SEED,
        ..ServiceConfig::default()
    };
    let importable: Vec<u64> = (1..=RECORDS)
        .filter(|&id| config.is_importable(id))
        .collect();

    // First run: kill it once it has committed KILL_AFTER records.
    let mut child = Guard(importer(&db, "30s").spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        seen.push(line);
        if imported_ids(&seen).len() >= KILL_AFTER {
            break;
        }
    }
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed, not finished: {status:?}");
    let committed = imported_ids(&seen);
    assert!(
        committed.len() >= KILL_AFTER,
        "the child stopped early: {seen:?}"
    );

    // Everything it reported committed is there, once.
    let store = Store::open(&db).unwrap();
    let after_kill = store.ids().unwrap();
    let after_kill_set: BTreeSet<u64> = after_kill.iter().copied().collect();
    assert_eq!(after_kill.len(), after_kill_set.len(), "no duplicate rows");
    assert!(
        committed.is_subset(&after_kill_set),
        "a committed record was lost"
    );
    assert!(after_kill.len() < importable.len(), "the kill came mid-run");

    // Second run, no outage: it completes, importing only what is missing.
    let output = importer(&db, "0").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let rerun_imported = imported_ids(&lines);
    assert!(
        rerun_imported.is_disjoint(&after_kill_set),
        "re-imported a stored record"
    );

    let stored = store.ids().unwrap();
    assert_eq!(stored, importable, "every importable record, each once");
    assert_eq!(rerun_imported.len() + after_kill.len(), importable.len());
    for id in stored {
        assert_eq!(store.get(id).unwrap(), Some(Molecule::catalog_entry(id)));
    }
}
