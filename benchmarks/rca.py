"""Root-cause benchmark: does `tracekit causes` (and the report's own window detection) name
the service a fault was injected into, on public fault-injection data of systems we did not
build?

    . .venv/bin/activate
    python benchmarks/rca.py                                   # every case in ../shared/nezha
    python benchmarks/rca.py --system online-boutique --json
    python benchmarks/rca.py --cases /path/to/other/nezha/cases   # the same layout elsewhere

The cases are Nezha's (ESEC/FSE 2023; ../shared/nezha/README.md): Online Boutique and Train
Ticket on Kubernetes, one fault injected at a time, converted to OTLP/JSON: a minute of the
system's normal traffic as the baseline, then the fault's minutes. For each case, in a fresh
store (cached under --cache):
- `causes`: `tracekit causes` over the fault (from the injection to the end of its data)
  against the case's baseline minute; the rank of the injected service among the services
  the ranking names, in order (a service named twice counts at its first place);
- `default`: the same window against the baseline `causes` takes by default (as long before
  the window: the fault file's own minutes before the injection, then the baseline minute),
  as a user who knows only when the fault began would run it;
- `report`: `tracekit report --since` over the whole case, as a user would run it without
  knowing when the fault began: the report's own window detection and baseline, then its
  suspects' services in order.
Printed per system and fault kind: AC@1 and AC@3 (the share of cases whose injected service
is first / among the first three), beside the published trace-based baseline (MicroRank on
Online Boutique: 41.1% / 48.2%, the paper's Table 3). A case with no ranking has no rank.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

TRACEKIT = [sys.executable, "-m", "tracekit"]
CASES = Path(__file__).resolve().parent.parent.parent / "shared" / "nezha"
PUBLISHED = {"online-boutique": ("MicroRank (paper's Table 3)", 0.411, 0.482)}


def when(ns: int) -> str:
    """A UTC timestamp as the CLI reads it (nanoseconds kept)."""
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{rest:09d}"


def run(*args: str) -> dict:
    result = subprocess.run([*TRACEKIT, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"tracekit {' '.join(args[:2])} failed ({result.returncode}): "
                           f"{result.stderr.strip()[-1500:]}")
    return json.loads(result.stdout)


def store_of(case: dict, cases_dir: Path, cache: Path) -> Path:
    """The case imported (and analyzed) into a store of its own, made once."""
    db = cache / f"{case['case']}.duckdb"
    if not db.exists():
        partial = db.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        subprocess.run([*TRACEKIT, "import", "--db", str(partial), str(cases_dir / case["file"])],
                       check=True, capture_output=True)
        partial.rename(db)
    return db


def services_in_order(names: list[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
    return seen


def rank_of(service: str, ranked: list[str]) -> int | None:
    return ranked.index(service) + 1 if service in ranked else None


def evaluate(case: dict, db: Path) -> dict:
    causes = run("causes", "--db", str(db), "--from", when(case["inject_ns"]),
                 "--to", when(case["fault_data_ns"][1] + 1),
                 "--baseline-from", when(case["baseline_ns"][0]),
                 "--baseline-to", when(case["baseline_ns"][1]), "--json")["causes"]
    by_causes = services_in_order([c["service"] for c in causes])
    # As a user would run it knowing only when the fault began: the baseline tracekit takes
    # by default, as long before the window (the fault file's own minutes before the
    # injection, and the shifted baseline minute before them).
    by_default = services_in_order([c["service"] for c in run(
        "causes", "--db", str(db), "--from", when(case["inject_ns"]),
        "--to", when(case["fault_data_ns"][1] + 1), "--json")["causes"]])
    span_s = (case["fault_data_ns"][1] - case["baseline_ns"][0]) / 1e9
    report = run("report", "--db", str(db), "--since", f"{int(span_s) + 1}s", "--format", "json")
    by_report = services_in_order([s.get("service") for s in report.get("suspects", [])])
    return {"case": case["case"], "system": case["system"], "fault": case["fault"],
            "service": case["service"],
            "causes_rank": rank_of(case["service"], by_causes), "causes_top": by_causes[:3],
            "default_rank": rank_of(case["service"], by_default), "default_top": by_default[:3],
            "report_rank": rank_of(case["service"], by_report), "report_top": by_report[:3],
            "report_window": report.get("window")}


def accuracy(results: list[dict], key: str, k: int) -> float:
    return sum(1 for r in results if r[key] is not None and r[key] <= k) / max(len(results), 1)


def summary(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["system"], "all")].append(r)
        groups[(r["system"], r["fault"])].append(r)
    rows = []
    for (system, fault), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] != "all", g[0][1])):
        ranks = [r["causes_rank"] for r in group if r["causes_rank"] is not None]
        rows.append({"system": system, "fault": fault, "cases": len(group),
                     "causes_ac1": accuracy(group, "causes_rank", 1),
                     "causes_ac3": accuracy(group, "causes_rank", 3),
                     "causes_median_rank": statistics.median(ranks) if ranks else None,
                     "default_ac1": accuracy(group, "default_rank", 1),
                     "default_ac3": accuracy(group, "default_rank", 3),
                     "report_ac1": accuracy(group, "report_rank", 1),
                     "report_ac3": accuracy(group, "report_rank", 3)})
    return rows


def print_table(results: list[dict], rows: list[dict]) -> None:
    print(f"{'system':<17}{'fault':<16}{'cases':>6}{'causes AC@1':>13}{'AC@3':>7}"
          f"{'default AC@1':>14}{'AC@3':>7}{'report AC@1':>13}{'AC@3':>7}   published (AC@1 / AC@3)")
    for row in rows:
        published = PUBLISHED.get(row["system"]) if row["fault"] == "all" else None
        print(f"{row['system']:<17}{row['fault']:<16}{row['cases']:>6}{row['causes_ac1']:>13.0%}"
              f"{row['causes_ac3']:>7.0%}{row['default_ac1']:>14.0%}{row['default_ac3']:>7.0%}"
              f"{row['report_ac1']:>13.0%}{row['report_ac3']:>7.0%}   "
              + (f"{published[0]}: {published[1]:.0%} / {published[2]:.0%}" if published else ""))
    print()
    for r in results:
        print(f"{r['case']:<48} {r['service']:<28} causes #{r['causes_rank'] or '-':<3} "
              f"{', '.join(r['causes_top']) or '(none)':<60} report #{r['report_rank'] or '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=CASES, help=f"default {CASES}")
    parser.add_argument("--system", help="only this system (online-boutique, train-ticket)")
    parser.add_argument("--only", nargs="*", metavar="CASE", help="only these cases (name prefixes)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tracekit-rca")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    cases = [c for listing in sorted(args.cases.glob("*-cases.json"))
             for c in json.loads(listing.read_text())]
    cases = [c for c in cases if (not args.system or c["system"] == args.system)
             and (not args.only or any(c["case"].startswith(p) for p in args.only))]
    if not cases:
        sys.exit(f"no cases in {args.cases} (a *-cases.json beside the case files)")
    results = []
    for i, case in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {case['case']}", file=sys.stderr, flush=True)
        results.append(evaluate(case, store_of(case, args.cases, args.cache)))
    rows = summary(results)
    if args.json:
        print(json.dumps({"summary": rows, "cases": results}, indent=2))
    else:
        print_table(results, rows)


if __name__ == "__main__":
    main()
