//! The protocol of `sync.lua`: the arguments of one breaker's call of the script and what its
//! answer does to the breaker's gate. The script's header documents both sides.

use super::RedisStoreConfig;
use crate::store::gate::{
    FleetCommand, FleetControl, FleetState, Gate, Outbox, ProbeOutcome, Seed, SharedState,
};
use std::time::Duration;

/// One round of one process for one shared breaker, run atomically by Redis.
pub(super) const SCRIPT: &str = include_str!("sync.lua");

/// What the script answers for one breaker.
pub(super) type Reply = (
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Vec<i64>,
    Vec<String>,
    i64,
);

/// The script call for one breaker.
pub(super) fn invocation(
    config: &RedisStoreConfig,
    script: &redis::Script,
    key: &str,
    outbox: &Outbox,
) -> redis::Cmd {
    let knobs = outbox.knobs;
    let (command, command_ttl) = match outbox.command {
        None => ("", None),
        Some(FleetCommand::ForceOpen(ttl)) => ("force_open", ttl),
        Some(FleetCommand::Disable(ttl)) => ("disable", ttl),
        Some(FleetCommand::Clear) => ("clear", None),
    };
    let (seed_generation, seed_open, seed_pause) = match outbox.seed {
        Some(seed) => (
            seed.generation as i64,
            millis(seed.open_remaining),
            millis(seed.pause_remaining),
        ),
        None => (-1, 0, 0),
    };
    let (seed_control, seed_control_ms) = match outbox.seed {
        Some(Seed {
            control: FleetControl::ForcedOpen,
            control_remaining,
            ..
        }) => (
            "force_open",
            control_remaining.map_or(0, |d| millis(d).max(1)),
        ),
        Some(Seed {
            control: FleetControl::Disabled,
            control_remaining,
            ..
        }) => ("disable", control_remaining.map_or(0, |d| millis(d).max(1))),
        _ => ("", 0),
    };
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash())
        .arg(1)
        .arg(key)
        .arg(&config.instance_id)
        .arg(if outbox.local_open { "1" } else { "0" })
        .arg(config.quorum_min)
        .arg(config.quorum_ratio)
        .arg(millis(knobs.reset_timeout).max(1))
        .arg(knobs.factor)
        .arg(millis(knobs.max_open_timeout).max(1))
        .arg(knobs.half_open_max_calls.max(1))
        .arg(knobs.success_threshold.max(1))
        .arg(millis(config.probe_lease).max(1))
        .arg(millis(config.liveness()))
        .arg(millis(config.key_ttl).max(1))
        .arg(u8::from(outbox.demand))
        .arg(outbox.pause.map_or(0, millis))
        .arg(command)
        .arg(command_ttl.map_or(0, millis))
        .arg(seed_generation)
        .arg(seed_open)
        .arg(seed_pause)
        .arg(seed_control)
        .arg(seed_control_ms)
        .arg(knobs.max_half_open_wait.map_or(0, |d| millis(d).max(1)))
        .arg(outbox.reports.len());
    for report in &outbox.reports {
        let outcome = match report.outcome {
            ProbeOutcome::Success => "s",
            ProbeOutcome::Failure => "f",
            ProbeOutcome::Neutral => "n",
        };
        cmd.arg(report.generation).arg(report.lease).arg(outcome);
    }
    cmd
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Applies one script answer to its gate, turning Redis's remaining times into this process's
/// monotonic deadlines.
pub(super) fn apply(gate: &Gate, reply: Reply, lease_ttl: Duration, voted_in: Option<u64>) {
    let (
        state,
        generation,
        open_ms,
        pause_ms,
        control,
        control_ms,
        live,
        _opens,
        leases,
        open,
        recreated,
    ) = reply;
    let now = gate.clock().now();
    let at = |ms: i64| now.saturating_add(Duration::from_millis(ms.max(0) as u64));
    let shared = SharedState {
        state: match state {
            1 => FleetState::Open,
            2 => FleetState::HalfOpen,
            _ => FleetState::Closed,
        },
        generation: generation.max(0) as u64,
        open_until: (state == 1).then(|| at(open_ms)),
        pause_until: (pause_ms > 0).then(|| at(pause_ms)),
        control: match control {
            1 => FleetControl::ForcedOpen,
            2 => FleetControl::Disabled,
            _ => FleetControl::Auto,
        },
        control_until: (control != 0 && control_ms >= 0).then(|| at(control_ms)),
        live_instances: u32::try_from(live.max(0)).unwrap_or(u32::MAX),
        open_instances: open,
    };
    let leases: Vec<u64> = leases.into_iter().map(|l| l.max(0) as u64).collect();
    let vote_lost = gate.local_open() && voted_in != Some(shared.generation);
    gate.apply(shared, &leases, lease_ttl, recreated == 1);
    if vote_lost {
        // The vote was cast in a generation the fleet has left (or before this process knew
        // one), so it was not counted: cast it again at once, in the generation now known.
        gate.wake();
    }
}
