#!/usr/bin/env python3
"""Prints the Markdown tables of docs/benchmarks.md from criterion's last run.

Run the benchmarks first (`cargo bench --bench happy_sync` ... or plain `cargo bench`), then
`python3 benches/summary.py [CRITERION_DIR ...]` (default `target/criterion`). Reads each
benchmark's median from `<group>/<benchmark>/new/estimates.json`; prints ns per call with the
ratio of every contender to ours (the `#[retry]` site), and for the scaling group
the calls per second and the 2-thread / 1-thread ratio.

Given several directories (copies of `target/criterion` after repeated runs), it takes for each
benchmark the lowest of its medians: on a machine shared with other work, a run can only be
slowed down by it, so the lowest is the closest to the code's own cost; the spread is shown.
"""

import json
import sys
from pathlib import Path

OURS = "retry-attribute"


ROOTS: list = []


def medians(rel: Path) -> list:
    """The medians of one benchmark (a path below the criterion directory), one per run."""
    found = []
    for root in ROOTS:
        f = root / rel / "new" / "estimates.json"
        if f.exists():
            found.append(json.loads(f.read_text())["median"]["point_estimate"])
    return found


def median_ns(bench_dir: Path) -> float:
    return min(medians(bench_dir.relative_to(ROOTS[0])))


def spread(bench_dir: Path) -> str:
    values = medians(bench_dir.relative_to(ROOTS[0]))
    if len(values) < 2:
        return ""
    return f"{min(values):.1f}-{max(values):.1f}"


def title(bench_dir: Path) -> str:
    """The benchmark's name as given in the code (directory names are sanitised)."""
    meta = bench_dir / "new" / "benchmark.json"
    if meta.exists():
        return json.loads(meta.read_text())["function_id"]
    return bench_dir.name


def group_table(root: Path, group: str) -> None:
    gdir = root / group
    if not gdir.is_dir():
        return
    rows = [(title(d), median_ns(d)) for d in sorted(gdir.iterdir()) if (d / "new").is_dir()]
    order = ["direct", OURS]
    rows.sort(key=lambda r: (order.index(r[0]) if r[0] in order else 2, r[1]))
    ours = dict(rows).get(OURS)
    direct = dict(rows).get("direct")
    print(f"\n### {group}\n")
    dirs = {title(d): d for d in gdir.iterdir() if (d / "new").is_dir()}
    print("| contender | median ns/call | over direct | contender / ours | medians of the runs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ns in rows:
        over = f"+{ns - direct:.1f} ns" if direct is not None and name != "direct" else ""
        ratio = f"{ns / ours:.2f}x" if ours else ""
        print(f"| {name} | {ns:.1f} | {over} | {ratio} | {spread(dirs[name])} |")


def scaling_table(root: Path) -> None:
    gdir = root / "scaling"
    if not gdir.is_dir():
        return
    print("\n### scaling\n")
    print("| contender | 1 thread, M calls/s | 2 threads, M calls/s | 2 threads / 1 thread |")
    print("| --- | ---: | ---: | ---: |")
    for d in sorted(gdir.iterdir()):
        one, two = d / "1", d / "2"
        if not ((one / "new").is_dir() and (two / "new").is_dir()):
            continue
        # One iteration is one call per thread.
        rate1 = 1e3 / median_ns(one)
        rate2 = 2e3 / median_ns(two)
        name = json.loads((one / "new" / "benchmark.json").read_text())["function_id"]
        print(f"| {name} | {rate1:.1f} | {rate2:.1f} | {rate2 / rate1:.2f} |")


def plain_table(root: Path, group: str, unit: str, scale: float) -> None:
    gdir = root / group
    if not gdir.is_dir():
        return
    print(f"\n### {group}\n")
    print(f"| measure | median {unit} |")
    print("| --- | ---: |")
    for d in sorted(gdir.iterdir()):
        if (d / "new").is_dir():
            print(f"| {title(d)} | {median_ns(d) / scale:.2f} |")


def main() -> None:
    ROOTS.extend(Path(a) for a in sys.argv[1:] or ["target/criterion"])
    root = ROOTS[0]
    for group in ["happy_sync", "happy_async", "failure_sync", "failure_async"]:
        group_table(root, group)
    scaling_table(root)
    plain_table(root, "registry_scale", "ms", 1e6)
    plain_table(root, "primitives", "ns", 1.0)


if __name__ == "__main__":
    main()
