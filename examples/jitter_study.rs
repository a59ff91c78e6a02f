//! The jitter study: the AWS architecture note "Exponential Backoff And Jitter" replayed with our
//! delay schedules (see `resilience::jitter_sim` for the model). Prints the mean work (writes)
//! and completion time per strategy and number of clients, and plots both against the number
//! of clients.
//!
//! `cargo run --release --example jitter_study [-- --runs N] [--max-clients N] [--step N] [--out PATH]`
//! (defaults: 100 runs per point, 1 to 100 clients in steps of 5, `target/jitter_study.svg`).

use plotters::prelude::*;
use resilience::jitter_sim::{mean, Mean, Strategy};
use std::path::PathBuf;
use std::process::ExitCode;

struct Args {
    runs: u32,
    max_clients: usize,
    step: usize,
    out: PathBuf,
}

fn usage() -> String {
    "usage: jitter_study [--runs N] [--max-clients N] [--step N] [--out PATH]".to_owned()
}

fn parse_args() -> Result<Args, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let mut args = Args {
        runs: 100,
        max_clients: 100,
        step: 5,
        out: target.join("jitter_study.svg"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        let number = |v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} takes a whole number above 0, got {v:?}"))
        };
        match flag.as_str() {
            "--runs" => args.runs = u32::try_from(number(value()?)?).unwrap_or(u32::MAX),
            "--max-clients" => args.max_clients = number(value()?)?,
            "--step" => args.step = number(value()?)?,
            "--out" => args.out = PathBuf::from(value()?),
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    Ok(args)
}

/// 1, then every multiple of `step` up to `max`.
fn client_counts(max: usize, step: usize) -> Vec<usize> {
    let mut counts = vec![1];
    counts.extend((step..=max).step_by(step).filter(|&n| n > 1));
    counts
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let strategies = Strategy::all();
    let clients = client_counts(args.max_clients, args.step);
    // results[s][c]: strategy s at clients[c]
    let results: Vec<Vec<Mean>> = strategies
        .iter()
        .map(|s| clients.iter().map(|&n| mean(n, s, args.runs, 1)).collect())
        .collect();

    print_table(
        "mean writes per run (work)",
        &strategies,
        &clients,
        &results,
        |m| m.calls,
    );
    print_table(
        "mean completion time per run, ms",
        &strategies,
        &clients,
        &results,
        |m| m.completion_ms,
    );
    print_summary(&strategies, &clients, &results);

    if let Some(dir) = args.out.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    match plot(&args.out, &strategies, &clients, &results, args.runs) {
        Ok(()) => {
            println!("\nplot: {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot draw {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

fn print_table(
    title: &str,
    strategies: &[Strategy],
    clients: &[usize],
    results: &[Vec<Mean>],
    value: impl Fn(&Mean) -> f64,
) {
    println!("\n{title}");
    print!("{:>8}", "clients");
    for s in strategies {
        print!(" | {:>12}", short(s.name));
    }
    println!();
    for (c, n) in clients.iter().enumerate() {
        print!("{n:>8}");
        for row in results {
            print!(" | {:>12.1}", value(&row[c]));
        }
        println!();
    }
}

/// The largest client count, each strategy against exponential backoff without jitter.
fn print_summary(strategies: &[Strategy], clients: &[usize], results: &[Vec<Mean>]) {
    let last = clients.len() - 1;
    let plain = strategies
        .iter()
        .position(|s| s.name == "exponential, no jitter")
        .map(|i| results[i][last]);
    println!(
        "\nat {} clients, against exponential backoff without jitter:",
        clients[last]
    );
    for (s, row) in strategies.iter().zip(results) {
        let m = row[last];
        match plain {
            Some(p) => println!(
                "  {:<36} {:>9.0} writes ({:>5.2}x)  {:>9.0} ms ({:>5.2}x)",
                s.name,
                m.calls,
                m.calls / p.calls,
                m.completion_ms,
                m.completion_ms / p.completion_ms
            ),
            None => println!(
                "  {:<36} {:>9.0} writes  {:>9.0} ms",
                s.name, m.calls, m.completion_ms
            ),
        }
    }
}

/// A column header of at most 12 characters.
fn short(name: &str) -> &str {
    match name {
        "exponential, no jitter" => "no jitter",
        "proportional jitter 0.1 (original)" => "prop. 0.1",
        "decorrelated jitter" => "decorrelated",
        other => other,
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(127, 127, 127),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// One chart: where, its title, its y axis, and the figure it shows.
type Panel<'a, DB> = (
    &'a DrawingArea<DB, plotters::coord::Shift>,
    &'static str,
    &'static str,
    fn(&Mean) -> f64,
);

/// Two charts side by side: writes and completion time against clients, a line per strategy.
fn plot(
    path: &std::path::Path,
    strategies: &[Strategy],
    clients: &[usize],
    results: &[Vec<Mean>],
    runs: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    let max_clients = *clients.last().unwrap_or(&1) as f64;
    let panels: [Panel<'_, _>; 2] = [
        (&left, "Work: writes per run", "writes", |m| m.calls),
        (&right, "Completion time per run", "milliseconds", |m| {
            m.completion_ms
        }),
    ];
    for (area, title, y_label, value) in panels {
        let y_max = results.iter().flatten().map(value).fold(1.0_f64, f64::max) * 1.05;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title} (mean of {runs} runs)"), ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..max_clients, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("clients")
            .y_desc(y_label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for ((s, row), color) in strategies.iter().zip(results).zip(COLORS.iter().cycle()) {
            let points = clients.iter().zip(row).map(|(&n, m)| (n as f64, value(m)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
