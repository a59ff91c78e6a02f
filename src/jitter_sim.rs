//! The simulation of the AWS architecture note "Exponential Backoff And Jitter", in virtual time.
//!
//! `clients` clients each want to update one database row once, with optimistic concurrency:
//! read the row's version, then write with that version; the write succeeds only if nobody
//! wrote in between, and a client whose write failed waits for its backoff, then reads and
//! tries again. Every message crosses a network whose delay is `|N(10 ms, 2 ms)|`, as in the
//! note. Events run from a queue ordered by their virtual time, so a run takes microseconds and
//! never sleeps. The delays come from [`resilience_core::Backoff::schedule`], one schedule per
//! client, so the study measures the jitter strategies the runtime actually uses.
//!
//! ```
//! use resilience::jitter_sim::{simulate, Strategy};
//! let outcome = simulate(10, &Strategy::all()[3], 7);
//! assert_eq!(outcome.calls - outcome.failures, 10); // each client wrote once
//! ```

use resilience_core::{Backoff, DelaySchedule, Jitter, Rng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Mean one-way network delay, as in the note's simulator.
pub const NET_MEAN: Duration = Duration::from_millis(10);
/// Standard deviation of the network delay.
pub const NET_SD: Duration = Duration::from_millis(2);
/// The note's backoff base (our `initial_delay`).
pub const BASE: Duration = Duration::from_millis(5);
/// The note's backoff cap (our `max_delay`).
pub const CAP: Duration = Duration::from_secs(2);

/// One way of waiting between attempts.
#[derive(Clone, Debug)]
pub struct Strategy {
    /// Its name in tables and plots.
    pub name: &'static str,
    /// The delays; `None` retries at once (the note's "no backoff" reference).
    pub backoff: Option<Backoff>,
}

impl Strategy {
    /// The strategies of the study: no backoff at all, exponential backoff without jitter, the
    /// original's proportional jitter (factor 0.1), and the note's full, equal and decorrelated
    /// jitter. Base 5 ms, cap 2 s, factor 2, as in the note.
    ///
    /// ```
    /// let names: Vec<_> = resilience::jitter_sim::Strategy::all().iter().map(|s| s.name).collect();
    /// assert_eq!(names[1], "exponential, no jitter");
    /// ```
    pub fn all() -> Vec<Strategy> {
        let exponential = |jitter, jitter_factor| {
            Some(Backoff {
                initial_delay: BASE,
                max_delay: CAP,
                backoff_factor: 2.0,
                jitter_factor,
                jitter,
            })
        };
        vec![
            Strategy {
                name: "no backoff",
                backoff: None,
            },
            Strategy {
                name: "exponential, no jitter",
                backoff: exponential(Jitter::Proportional, 0.0),
            },
            Strategy {
                name: "proportional jitter 0.1 (original)",
                backoff: exponential(Jitter::Proportional, 0.1),
            },
            Strategy {
                name: "full jitter",
                backoff: exponential(Jitter::Full, 0.0),
            },
            Strategy {
                name: "equal jitter",
                backoff: exponential(Jitter::Equal, 0.0),
            },
            Strategy {
                name: "decorrelated jitter",
                backoff: exponential(Jitter::Decorrelated, 0.0),
            },
        ]
    }
}

/// What one run cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Writes that reached the row: the note's "calls", the work done.
    pub calls: u64,
    /// Writes refused because another write came first.
    pub failures: u64,
    /// Virtual time until the last client got its answer.
    pub completion: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Message {
    /// A read reaches the row.
    Read,
    /// The row's version reaches the client.
    ReadReply { version: u64 },
    /// A write made against `version` reaches the row.
    Write { version: u64 },
    /// The outcome of its write reaches the client.
    WriteReply { ok: bool },
}

/// A message in flight: delivered at `at` (nanoseconds of virtual time); `seq` keeps equal
/// times in sending order, so a run depends on its seed only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    at: u64,
    seq: u64,
    client: usize,
    message: Message,
}

struct Network {
    rng: Rng,
}

impl Network {
    /// `|N(mean, sd)|` by the Box-Muller transform, in nanoseconds.
    fn delay(&self) -> u64 {
        let u1 = 1.0 - self.rng.next_f64(); // in (0, 1]: ln stays finite
        let u2 = self.rng.next_f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let nanos = NET_MEAN.as_nanos() as f64 + NET_SD.as_nanos() as f64 * z;
        nanos.abs().round() as u64
    }
}

/// Runs `clients` clients until each has written once, with `strategy`'s backoff; the same
/// `seed` gives the same outcome.
pub fn simulate(clients: usize, strategy: &Strategy, seed: u64) -> Outcome {
    let net = Network {
        rng: Rng::seeded(seed),
    };
    let mut schedules: Vec<Option<DelaySchedule>> = (0..clients)
        .map(|_| {
            let client_seed = net.rng.next_u64();
            strategy
                .backoff
                .map(|b| b.schedule(Rng::seeded(client_seed)))
        })
        .collect();
    let mut queue = BinaryHeap::new();
    let mut seq = 0;
    let mut send = |queue: &mut BinaryHeap<Reverse<Event>>, at: u64, client, message| {
        seq += 1;
        queue.push(Reverse(Event {
            at,
            seq,
            client,
            message,
        }));
    };
    for client in 0..clients {
        send(&mut queue, net.delay(), client, Message::Read);
    }

    let mut row_version = 0;
    let mut outcome = Outcome::default();
    let mut now = 0;
    while let Some(Reverse(event)) = queue.pop() {
        debug_assert!(event.at >= now, "virtual time runs forwards");
        now = event.at;
        let client = event.client;
        match event.message {
            Message::Read => send(
                &mut queue,
                now + net.delay(),
                client,
                Message::ReadReply {
                    version: row_version,
                },
            ),
            Message::ReadReply { version } => send(
                &mut queue,
                now + net.delay(),
                client,
                Message::Write { version },
            ),
            Message::Write { version } => {
                outcome.calls += 1;
                let ok = version == row_version;
                if ok {
                    row_version += 1;
                } else {
                    outcome.failures += 1;
                }
                send(
                    &mut queue,
                    now + net.delay(),
                    client,
                    Message::WriteReply { ok },
                );
            }
            Message::WriteReply { ok: true } => {}
            Message::WriteReply { ok: false } => {
                let backoff = schedules[client]
                    .as_mut()
                    .and_then(Iterator::next)
                    .unwrap_or(Duration::ZERO);
                let wait = u64::try_from(backoff.as_nanos()).unwrap_or(u64::MAX);
                send(&mut queue, now + net.delay() + wait, client, Message::Read);
            }
        }
    }
    outcome.completion = Duration::from_nanos(now);
    outcome
}

/// Means over `runs` runs (seeds `seed`, `seed + 1`, …) of one configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mean {
    /// Mean writes per run.
    pub calls: f64,
    /// Mean completion time per run, in milliseconds.
    pub completion_ms: f64,
}

/// The mean outcome of `runs` runs of `clients` clients with `strategy`.
///
/// ```
/// use resilience::jitter_sim::{mean, Strategy};
/// let one = mean(1, &Strategy::all()[0], 10, 1);
/// assert_eq!(one.calls, 1.0); // alone, a client never conflicts
/// ```
pub fn mean(clients: usize, strategy: &Strategy, runs: u32, seed: u64) -> Mean {
    let runs = runs.max(1);
    let (mut calls, mut time) = (0.0, 0.0);
    for run in 0..runs {
        let o = simulate(clients, strategy, seed.wrapping_add(u64::from(run)));
        calls += o.calls as f64;
        time += o.completion.as_secs_f64() * 1e3;
    }
    Mean {
        calls: calls / f64::from(runs),
        completion_ms: time / f64::from(runs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(name: &str) -> Strategy {
        Strategy::all()
            .into_iter()
            .find(|s| s.name == name)
            .expect("a strategy of the study")
    }

    #[test]
    fn every_client_writes_exactly_once() {
        for s in Strategy::all() {
            for clients in [1, 2, 17, 60] {
                let o = simulate(clients, &s, 3);
                assert_eq!(o.calls - o.failures, clients as u64, "{}", s.name);
            }
        }
    }

    #[test]
    fn a_lone_client_needs_one_write_and_four_network_trips() {
        let o = simulate(1, &strategy("full jitter"), 11);
        assert_eq!((o.calls, o.failures), (1, 0));
        // read, reply, write, reply: about 40 ms on a 10 ms network.
        let ms = o.completion.as_secs_f64() * 1e3;
        assert!((20.0..60.0).contains(&ms), "{ms} ms");
    }

    #[test]
    fn contention_without_backoff_costs_about_one_round_per_client() {
        // Without any wait, each round lets about one client through: the work grows with the
        // square of the clients.
        let o = mean(40, &strategy("no backoff"), 20, 1);
        assert!(o.calls > 400.0, "{o:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let s = strategy("decorrelated jitter");
        assert_eq!(simulate(30, &s, 99), simulate(30, &s, 99));
        assert_ne!(simulate(30, &s, 99), simulate(30, &s, 100));
    }

    #[test]
    fn jitter_does_less_work_than_plain_exponential_backoff() {
        // The note's main finding, at 50 clients over 50 runs.
        let plain = mean(50, &strategy("exponential, no jitter"), 50, 5).calls;
        for name in ["full jitter", "equal jitter", "decorrelated jitter"] {
            let jittered = mean(50, &strategy(name), 50, 5).calls;
            assert!(
                jittered < plain,
                "{name}: {jittered} calls, no jitter: {plain}"
            );
        }
    }
}
