//! What the service answers: its catalog, its faults and its outage, each answer a pure function
//! of the seed, the id and how many times the id was asked for before.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One record of the catalog.
///
/// ```
/// use resilience::flaky_service::Molecule;
/// let m = Molecule::catalog_entry(7);
/// assert_eq!(m.id, 7);
/// assert_eq!(m, Molecule::catalog_entry(7)); // the catalog never changes
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Molecule {
    /// The catalog id.
    pub id: u64,
    /// A display name.
    pub name: String,
    /// The structure as SMILES.
    pub smiles: String,
    /// The molecular formula.
    pub formula: String,
    /// Grams per mole.
    pub molecular_weight: f64,
}

impl Molecule {
    /// The catalog's record for `id`: the same on every run and for every seed.
    pub fn catalog_entry(id: u64) -> Molecule {
        const BASES: [(&str, &str, &str, f64); 8] = [
            ("ethanol", "CCO", "C2H6O", 46.069),
            (
                "caffeine",
                "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
                "C8H10N4O2",
                194.194,
            ),
            ("aspirin", "CC(=O)OC1=CC=CC=C1C(=O)O", "C9H8O4", 180.159),
            ("glycerol", "C(C(CO)O)O", "C3H8O3", 92.094),
            ("dimethyl sulfoxide", "CS(=O)C", "C2H6OS", 78.13),
            (
                "trehalose",
                "C(C1C(C(C(C(O1)OC2C(C(C(C(O2)CO)O)O)O)O)O)O)O",
                "C12H22O11",
                342.297,
            ),
            ("ethylene glycol", "C(CO)O", "C2H6O2", 62.068),
            ("proline", "C1CC(NC1)C(=O)O", "C5H9NO2", 115.132),
        ];
        let (name, smiles, formula, weight) = BASES[(mix(id) % BASES.len() as u64) as usize];
        Molecule {
            id,
            name: format!("{name} #{id}"),
            smiles: smiles.to_owned(),
            formula: formula.to_owned(),
            molecular_weight: weight,
        }
    }
}

/// How often each kind of transient fault is chosen when a request gets one (relative weights).
///
/// ```
/// use resilience::flaky_service::FaultMix;
/// let only_resets = FaultMix { unavailable: 0, rate_limited: 0, reset: 1, slow: 0 };
/// assert_eq!(only_resets.total(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultMix {
    /// 503 with `Retry-After`.
    pub unavailable: u32,
    /// 429 with `Retry-After`.
    pub rate_limited: u32,
    /// The connection is dropped without an answer.
    pub reset: u32,
    /// The answer comes after [`ServiceConfig::slow_delay`].
    pub slow: u32,
}

impl FaultMix {
    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.unavailable + self.rate_limited + self.reset + self.slow
    }
}

impl Default for FaultMix {
    fn default() -> Self {
        FaultMix {
            unavailable: 1,
            rate_limited: 1,
            reset: 1,
            slow: 1,
        }
    }
}

/// A window in which every request fails with a 503 (without `Retry-After`).
///
/// ```
/// use resilience::flaky_service::Outage;
/// use std::time::Duration;
/// let outage = Outage { after_requests: 500, duration: Duration::from_secs(2) };
/// # let _ = outage;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The outage starts with the request after this many.
    pub after_requests: u64,
    /// How long it lasts, on tokio's clock (so paused test time applies).
    pub duration: Duration,
}

/// What the service does. `Default`: 2,000 records, seed 42, a transient fault on 10% of the
/// requests, 2% unknown ids, 1% corrupt records, `Retry-After: 1`, slow answers after 2 s, no
/// outage.
///
/// ```
/// use resilience::flaky_service::ServiceConfig;
/// let config = ServiceConfig { records: 10, fault_rate: 0.0, ..ServiceConfig::default() };
/// assert!(config.validate().is_ok());
/// assert!(ServiceConfig { fault_rate: 1.5, ..config }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// The catalog's ids are `1..=records` (minus the unknown ones).
    pub records: u64,
    /// Seeds every fault decision.
    pub seed: u64,
    /// Probability that a request for a good record gets a transient fault.
    pub fault_rate: f64,
    /// Which transient faults, in what proportions.
    pub mix: FaultMix,
    /// Share of the ids in `1..=records` that the service does not know (404 on every request).
    pub not_found_rate: f64,
    /// Share of the ids whose record is corrupt (a body that is not JSON on every request).
    pub malformed_rate: f64,
    /// Sent as `Retry-After` (whole seconds, rounded up) with 503 and 429 faults.
    pub retry_after: Duration,
    /// How long a slow answer takes.
    pub slow_delay: Duration,
    /// An outage window, if any.
    pub outage: Option<Outage>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            records: 2000,
            seed: 42,
            fault_rate: 0.1,
            mix: FaultMix::default(),
            not_found_rate: 0.02,
            malformed_rate: 0.01,
            retry_after: Duration::from_secs(1),
            slow_delay: Duration::from_secs(2),
            outage: None,
        }
    }
}

/// A fault that every request for an id gets.
///
/// ```
/// use resilience::flaky_service::{PermanentFault, ServiceConfig};
/// let config = ServiceConfig::default();
/// assert_eq!(config.permanent_fault(0), Some(PermanentFault::NotFound));
/// assert_eq!(config.permanent_fault(config.records + 1), Some(PermanentFault::NotFound));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermanentFault {
    /// The id is not in the catalog: 404.
    NotFound,
    /// The record is corrupt: 200 with a body that is not JSON.
    Malformed,
}

/// What the service answers to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// 200 with the record.
    Record(Molecule),
    /// 200 with a body cut off in the middle of the record.
    Malformed(Molecule),
    /// 404.
    NotFound,
    /// 503 with `Retry-After`.
    Unavailable,
    /// 429 with `Retry-After`.
    RateLimited,
    /// The connection is dropped without an answer.
    Reset,
    /// 200 with the record after [`ServiceConfig::slow_delay`].
    Slow(Molecule),
    /// 503 without `Retry-After`: the outage.
    Outage,
}

impl Answer {
    /// Whether asking again may give a different answer.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Answer::Unavailable
                | Answer::RateLimited
                | Answer::Reset
                | Answer::Slow(_)
                | Answer::Outage
        )
    }
}

impl ServiceConfig {
    /// Checks the rates and the mix; the message names the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("fault_rate", self.fault_rate),
            ("not_found_rate", self.not_found_rate),
            ("malformed_rate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("`{name}` must be within [0, 1], got {rate}"));
            }
        }
        if self.fault_rate > 0.0 && self.mix.total() == 0 {
            return Err("`mix` has no fault with a weight above 0".to_owned());
        }
        Ok(())
    }

    /// The fault every request for `id` gets, if any: ids outside `1..=records` and a seeded
    /// share of the others are unknown; a seeded share of the rest is corrupt.
    pub fn permanent_fault(&self, id: u64) -> Option<PermanentFault> {
        if id == 0 || id > self.records {
            return Some(PermanentFault::NotFound);
        }
        if unit(self.seed, id, 0, SALT_NOT_FOUND) < self.not_found_rate {
            return Some(PermanentFault::NotFound);
        }
        if unit(self.seed, id, 0, SALT_MALFORMED) < self.malformed_rate {
            return Some(PermanentFault::Malformed);
        }
        None
    }

    /// Whether a client can ever get the record of `id`.
    ///
    /// ```
    /// use resilience::flaky_service::ServiceConfig;
    /// let config = ServiceConfig { records: 1000, ..ServiceConfig::default() };
    /// let importable = (1..=1000).filter(|&id| config.is_importable(id)).count();
    /// assert!(importable > 940 && importable < 1000); // 2% unknown, 1% corrupt
    /// assert!(!config.is_importable(1001));
    /// ```
    pub fn is_importable(&self, id: u64) -> bool {
        self.permanent_fault(id).is_none()
    }

    /// The answer to the request for `id` that comes after `previous` requests for it, outside
    /// any outage.
    ///
    /// ```
    /// use resilience::flaky_service::{Answer, ServiceConfig};
    /// let config = ServiceConfig { fault_rate: 0.0, ..ServiceConfig::default() };
    /// let id = (1..).find(|&id| config.is_importable(id)).unwrap();
    /// assert!(matches!(config.answer(id, 0), Answer::Record(m) if m.id == id));
    /// ```
    pub fn answer(&self, id: u64, previous: u64) -> Answer {
        match self.permanent_fault(id) {
            Some(PermanentFault::NotFound) => return Answer::NotFound,
            Some(PermanentFault::Malformed) => {
                return Answer::Malformed(Molecule::catalog_entry(id))
            }
            None => {}
        }
        if unit(self.seed, id, previous, SALT_FAULT) >= self.fault_rate || self.mix.total() == 0 {
            return Answer::Record(Molecule::catalog_entry(id));
        }
        let mut pick =
            mix(self.seed ^ mix(id ^ mix(previous ^ SALT_KIND))) % u64::from(self.mix.total());
        for (weight, answer) in [
            (self.mix.unavailable, Answer::Unavailable),
            (self.mix.rate_limited, Answer::RateLimited),
            (self.mix.reset, Answer::Reset),
        ] {
            if pick < u64::from(weight) {
                return answer;
            }
            pick -= u64::from(weight);
        }
        Answer::Slow(Molecule::catalog_entry(id))
    }
}

const SALT_NOT_FOUND: u64 = 0x6e6f_7466_6f75_6e64;
const SALT_MALFORMED: u64 = 0x6d61_6c66_6f72_6d64;
const SALT_FAULT: u64 = 0x6661_756c_7473_2121;
const SALT_KIND: u64 = 0x6b69_6e64_6f66_2121;

/// SplitMix64's finaliser: a well-spread 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) fixed by its inputs.
fn unit(seed: u64, id: u64, n: u64, salt: u64) -> f64 {
    let h = mix(seed ^ mix(id ^ mix(n ^ salt)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flaky_service::ServiceStats;

    #[test]
    fn answers_depend_only_on_seed_id_and_count() {
        let config = ServiceConfig {
            fault_rate: 0.5,
            ..ServiceConfig::default()
        };
        for id in 1..50 {
            for n in 0..5 {
                assert_eq!(config.answer(id, n), config.answer(id, n));
            }
        }
        let other = ServiceConfig {
            seed: 7,
            ..config.clone()
        };
        assert!((1..200).any(|id| config.answer(id, 0) != other.answer(id, 0)));
    }

    #[test]
    fn fault_rate_and_mix_are_honoured() {
        let config = ServiceConfig {
            records: 20_000,
            fault_rate: 0.25,
            ..ServiceConfig::default()
        };
        let mut stats = ServiceStats::default();
        for id in (1..=20_000).filter(|&id| config.is_importable(id)) {
            stats.count(Some(id), &config.answer(id, 0));
        }
        let asked = stats.ok + stats.transient_faults();
        let share = stats.transient_faults() as f64 / asked as f64;
        assert!((0.23..0.27).contains(&share), "{share}");
        for kind in [
            stats.unavailable,
            stats.rate_limited,
            stats.reset,
            stats.slow,
        ] {
            let share = kind as f64 / stats.transient_faults() as f64;
            assert!((0.2..0.3).contains(&share), "{stats:?}");
        }
    }

    #[test]
    fn permanent_faults_never_get_transient_ones() {
        let config = ServiceConfig {
            fault_rate: 1.0,
            not_found_rate: 0.1,
            malformed_rate: 0.1,
            ..ServiceConfig::default()
        };
        for id in 1..500 {
            match config.permanent_fault(id) {
                Some(PermanentFault::NotFound) => {
                    assert_eq!(config.answer(id, 3), Answer::NotFound)
                }
                Some(PermanentFault::Malformed) => {
                    assert!(matches!(config.answer(id, 3), Answer::Malformed(_)))
                }
                None => assert!(config.answer(id, 3).is_transient()),
            }
        }
    }

    #[test]
    fn bad_rates_are_rejected_with_the_field_name() {
        let err = ServiceConfig {
            not_found_rate: -0.1,
            ..ServiceConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("not_found_rate"), "{err}");
    }
}
