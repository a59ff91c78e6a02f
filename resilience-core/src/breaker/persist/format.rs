//! The state file's format: JSON, versioned.
//!
//! ```json
//! {
//!   "version": 1,
//!   "breakers": {
//!     "ChEMBL": {
//!       "fetch_molecule": {
//!         "state": "OPEN",
//!         "failure_count": 5,
//!         "success_count": 0,
//!         "open_until_unix_ms": 1767225660000,
//!         "current_timeout_ms": 60000
//!       }
//!     }
//!   }
//! }
//! ```
//!
//! Services and operations are nested keys rather than one `"service:operation"` string, so
//! `("a", "b:c")` and `("a:b", "c")` stay apart.

use crate::breaker::{BreakerControl, CircuitState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// One breaker's persisted state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub(crate) state: CircuitState,
    #[serde(default, skip_serializing_if = "is_auto")]
    pub(crate) control: BreakerControl,
    pub(crate) failure_count: u32,
    pub(crate) success_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) open_until_unix_ms: Option<u64>,
    pub(crate) current_timeout_ms: u64,
}

fn is_auto(control: &BreakerControl) -> bool {
    *control == BreakerControl::Auto
}

/// service -> operation -> record.
pub(crate) type Records = BTreeMap<String, BTreeMap<String, Record>>;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u32,
    breakers: Records,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: serde_json::Value,
}

/// Parses a state file, saying what is wrong with a bad one.
pub(crate) fn parse(bytes: &[u8]) -> Result<Records, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".to_owned());
    }
    let version: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| format!("not a state file: {e}"))?;
    if version.version != VERSION {
        return Err(format!(
            "unsupported version {} (this build reads version {VERSION})",
            version.version
        ));
    }
    let file: FileV1 =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid state file: {e}"))?;
    Ok(file.breakers)
}

/// The file's bytes for `records`.
pub(crate) fn render(records: &Records) -> Vec<u8> {
    let file = FileV1 {
        version: VERSION,
        breakers: records.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            state: CircuitState::Open,
            control: BreakerControl::Auto,
            failure_count: 5,
            success_count: 0,
            open_until_unix_ms: Some(1_767_225_660_000),
            current_timeout_ms: 60_000,
        }
    }

    #[test]
    fn round_trips() {
        let mut records = Records::new();
        records
            .entry("a".into())
            .or_default()
            .insert("b:c".into(), record());
        records
            .entry("a:b".into())
            .or_default()
            .insert("c".into(), record());
        assert_eq!(parse(&render(&records)).unwrap(), records);
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"{\"version\": 1, \"breakers\": {", "not a state file"),
            (b"{\"version\": 2, \"breakers\": {}}", "unsupported version 2"),
            (
                b"{\"version\": 1, \"breakers\": {\"s\": {\"o\": {\"state\": \"AJAR\", \"failure_count\": 0, \"success_count\": 0, \"current_timeout_ms\": 1}}}}",
                "invalid state file",
            ),
            (b"\x00\xff\xfe garbage", "not a state file"),
        ];
        for (bytes, expected) in cases {
            let err = parse(bytes).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }
}
