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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    // Checked before (see `parse`); declared so `deny_unknown_fields` accepts it.
    #[serde(rename = "version")]
    _version: u32,
    breakers: Records,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: serde_json::Value,
}

/// Why a state file's bytes give no records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Not a state file this or any build could read (empty, not JSON, a bad field, an
    /// impossible version): moved aside.
    Bad(String),
    /// A state file of a format version newer than [`VERSION`], written by a newer build of the
    /// program. Never moved aside or overwritten: that program may still be using it.
    Newer(u64),
}

/// Parses a state file, saying what is wrong with a bad one.
pub(crate) fn parse(bytes: &[u8]) -> Result<Records, Unusable> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Unusable::Bad("the file is empty".to_owned()));
    }
    let version: VersionOnly = serde_json::from_slice(bytes)
        .map_err(|e| Unusable::Bad(format!("not a state file: {e}")))?;
    match version.version.as_u64() {
        Some(v) if v == u64::from(VERSION) => {}
        // Only a whole number above ours is a newer format; anything else (0, -1, 1.5, "1") is
        // a file no build wrote.
        Some(v) if v > u64::from(VERSION) => return Err(Unusable::Newer(v)),
        _ => {
            return Err(Unusable::Bad(format!(
                "unsupported version {} (this build reads version {VERSION})",
                version.version
            )))
        }
    }
    let file: FileV1 = serde_json::from_slice(bytes)
        .map_err(|e| Unusable::Bad(format!("invalid state file: {e}")))?;
    Ok(file.breakers)
}

/// The file's bytes for `records`.
pub(crate) fn render(records: &Records) -> Vec<u8> {
    // Borrowed, so a write of a hundred thousand breakers does not copy them all first.
    #[derive(Serialize)]
    struct FileRef<'a> {
        version: u32,
        breakers: &'a Records,
    }
    let file = FileRef {
        version: VERSION,
        breakers: records,
    };
    // Serialising maps of strings and plain numbers into memory cannot fail.
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
    fn a_newer_version_is_told_apart_from_a_bad_file() {
        assert_eq!(
            parse(b"{\"version\": 2, \"breakers\": {\"anything\": [\"new\"]}}"),
            Err(Unusable::Newer(2))
        );
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
        let cases: [(&[u8], &str); 7] = [
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"{\"version\": 1, \"breakers\": {", "not a state file"),
            (b"{\"version\": 0, \"breakers\": {}}", "unsupported version 0"),
            (b"{\"version\": \"2\", \"breakers\": {}}", "unsupported version \"2\""),
            (
                b"{\"version\": 1, \"breakers\": {\"s\": {\"o\": {\"state\": \"AJAR\", \"failure_count\": 0, \"success_count\": 0, \"current_timeout_ms\": 1}}}}",
                "invalid state file",
            ),
            (b"\x00\xff\xfe garbage", "not a state file"),
        ];
        for (bytes, expected) in cases {
            let Err(Unusable::Bad(err)) = parse(bytes) else {
                panic!("{bytes:?} should be bad");
            };
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }
}
