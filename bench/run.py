"""`make bench`: run every scenario and write bench/results/<name>.json and .md plus summary.md.

`--smoke` runs the same code with tiny sizes (seconds; `make bench-smoke`, run by `make test`)
and writes to a temporary directory unless `--out` is given. `--only s1,s3` picks scenarios.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import s1_endpoint, s2_churn, s3_translate, s4_cold_start, s5_memory, s6_bytes, s7_restart
from bench.common import FULL, SMOKE, Sizes
from bench.report import RESULTS, Row, machine, table, write_rows

Scenario = Callable[[Sizes], tuple[dict[str, Any], list[Row]]]
SCENARIOS: dict[str, Scenario] = {
    "s3": s3_translate.run,
    "s6": s6_bytes.run,
    "s7": s7_restart.run,
    "s1": s1_endpoint.run,
    "s4": s4_cold_start.run,
    "s5": s5_memory.run,
    "s2": s2_churn.run,
}
NAMES = {
    "s1": "s1_endpoint",
    "s2": "s2_churn",
    "s3": "s3_translate",
    "s4": "s4_cold_start",
    "s5": "s5_memory",
    "s6": "s6_bytes",
    "s7": "s7_restart",
}


def run(sizes: Sizes, only: list[str], out: Path) -> tuple[list[Row], list[str]]:
    """Run the scenarios in `only`; their rows, and the names of those that failed."""
    rows: list[Row] = []
    failed: list[str] = []
    for key in only:
        # What earlier scenarios left (S3's 10,000-service model) neither stays garbage nor gets
        # traversed by the collector during a timed loop of this process.
        gc.collect()
        gc.freeze()
        started = time.monotonic()
        try:
            result, found = SCENARIOS[key](sizes)
        except Exception:
            traceback.print_exc()
            failed.append(key)
            continue
        result["seconds"] = time.monotonic() - started
        write_rows(NAMES[key], result, found, out)
        rows.extend(found)
        sys.stdout.write(table(found) + "\n")
        sys.stdout.flush()
    return rows, failed


def write_summary(out: Path) -> Path:
    """summary.md: the rows of every scenario whose results are in `out`, with each one's date."""
    lines = ["# make bench", "", f"{machine()}", ""]
    rows: list[Row] = []
    for key, name in sorted(NAMES.items()):
        path = out / f"{name}.json"
        if path.exists():
            payload = json.loads(path.read_text(encoding="utf-8"))
            rows += [Row(**row) for row in payload["rows"]]
            lines.append(f"- {key}: {payload['machine']['date']}, load average {payload['machine']['load_avg']}")
    summary = out / "summary.md"
    summary.write_text("\n".join([*lines, "", table(rows)]) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, checks that every scenario runs")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios (s1..s7)")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    args = parser.parse_args(argv)
    only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in only if key not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-smoke-")) if args.smoke else RESULTS)
    rows, failed = run(SMOKE if args.smoke else FULL, only, out)
    write_summary(out)
    print(f"results in {out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if args.smoke:
        empty = [r.measure for r in rows if not r.value or r.value.startswith("nan")]
        if empty or not rows:
            print(f"smoke: scenarios without figures: {empty}")
            return 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
