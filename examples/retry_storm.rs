//! The retry storm study: a dependency fully down for 30 s, then failing 5 % of calls, called by
//! 50 clients ten times a second each with `max_attempts = 5`; once without a retry budget and
//! once with Finagle's default (see `resilience::retry_storm` for the model). Prints a table of
//! the load during and after the outage, plots the dependency's load over time, and ends with one
//! line of ratios.
//!
//! `cargo run --release --example retry_storm [-- --out PATH]` (default `target/retry_storm.svg`).

use plotters::prelude::*;
use resilience::retry_storm::{simulate, Outcome, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("retry_storm.svg");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--out", Some(path)) => out = PathBuf::from(path),
            _ => {
                eprintln!("usage: retry_storm [--out PATH]");
                return ExitCode::FAILURE;
            }
        }
    }
    let scenario = Scenario::default();
    let without = simulate(&scenario, false);
    let with = simulate(&scenario, true);
    println!(
        "{} clients, a call each every {:?}, max_attempts = {}; down from {:?} for {:?}, then {:.0} % transient failures for {:?}\n",
        scenario.clients,
        scenario.interval,
        scenario.max_attempts,
        scenario.outage_start,
        scenario.outage,
        scenario.flakiness * 100.0,
        scenario.after
    );
    println!(
        "{:<16} {:>18} {:>22} {:>20} {:>18}",
        "budget",
        "attempts in outage",
        "peak attempts/second",
        "successes after",
        "budget exhausted"
    );
    for (name, o) in [("none", &without), ("Finagle default", &with)] {
        println!(
            "{:<16} {:>18} {:>22} {:>14}/{:<5} {:>18}",
            name,
            o.attempts_during_outage,
            o.attempts_per_second.iter().max().copied().unwrap_or(0),
            o.successes_after,
            o.calls_after,
            o.budget_exhausted
        );
    }
    if let Err(e) = plot(&out, &scenario, &without, &with) {
        eprintln!("could not draw {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("\nplot: {}", out.display());
    println!(
        "attempts_outage_with_budget_vs_without={:.3} successes_after_with_budget_vs_without={:.3}",
        with.attempts_during_outage as f64 / without.attempts_during_outage.max(1) as f64,
        with.successes_after as f64 / without.successes_after.max(1) as f64
    );
    ExitCode::SUCCESS
}

fn plot(
    out: &PathBuf,
    scenario: &Scenario,
    without: &Outcome,
    with: &Outcome,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(out, (900, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let seconds = without
        .attempts_per_second
        .len()
        .max(with.attempts_per_second.len()) as u32;
    let peak = without
        .attempts_per_second
        .iter()
        .chain(&with.attempts_per_second)
        .max()
        .copied()
        .unwrap_or(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Load on a dependency down for {} s, {} clients, max_attempts = {}",
                scenario.outage.as_secs(),
                scenario.clients,
                scenario.max_attempts
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0u32..seconds, 0u64..peak + peak / 10)?;
    chart
        .configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc("attempts per second")
        .draw()?;
    for (name, outcome, color) in [("no budget", without, RED), ("retry budget", with, BLUE)] {
        chart
            .draw_series(LineSeries::new(
                outcome
                    .attempts_per_second
                    .iter()
                    .enumerate()
                    .map(|(s, n)| (s as u32, *n)),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
