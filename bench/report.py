"""Writing results: JSON for machines, a markdown table for people."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    """One figure of a scenario, with the floor measured in the same run and the target."""

    measure: str
    value: str
    floor: str = ""
    target: str = ""
    met: bool | None = None
    """None: informative, no target."""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latencies(samples: list[float]) -> dict[str, Any]:
    """Samples (ms) with their p50, p99 and max: the figures every latency benchmark reports."""
    return {
        "samples_ms": samples,
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "max_ms": max(samples),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def write(name: str, result: dict[str, Any], rows: list[tuple[str, str]], directory: Path = RESULTS) -> Path:
    """Write DIRECTORY/NAME.json and NAME.md (two-column table); return the markdown path."""
    return write_rows(name, result, [Row(k, v) for k, v in rows], directory)


def write_rows(name: str, result: dict[str, Any], rows: list[Row], directory: Path = RESULTS) -> Path:
    """Write DIRECTORY/NAME.json and NAME.md with measure, value, floor, target; return the .md path."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "machine": machine(), "rows": [asdict(r) for r in rows], **result}
    (directory / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    lines = [f"# {name}", "", f"{payload['machine']}", "", table(rows)]
    path = directory / f"{name}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def table(rows: list[Row]) -> str:
    """A markdown table of `rows`."""
    lines = ["| measure | value | floor | target | |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = "" if r.met is None else ("met" if r.met else "**missed**")
        lines.append(f"| {r.measure} | {r.value} | {r.floor} | {r.target} | {verdict} |")
    return "\n".join(lines)
