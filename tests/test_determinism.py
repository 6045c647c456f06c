"""Same input in any order -> byte-identical output, across processes with different hash seeds.

Every golden case is rewritten into shuffled variants: listeners, services, hosts, endpoints,
domains, methods, header and query maps reordered, and the file split in two (listeners and
services in separate files). Route order is meaning (first match wins) and is kept.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from controlplane.dsl.yamltext import read_yaml
from tests.conftest import ROOT
from tests.golden_cases import cases

SEEDS = ("0", "1", "42", "4242")
VARIANTS = 3


def shuffled(value: Any, rng: random.Random, key: str = "") -> Any:
    """A copy of `value` with every order-free collection reordered."""
    if isinstance(value, dict):
        items = [(k, shuffled(v, rng, k)) for k, v in value.items()]
        rng.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        items = [shuffled(v, rng) for v in value]
        if key != "routes":
            rng.shuffle(items)
        return items
    return value


def write_variant(case: Path, directory: Path, rng: random.Random) -> None:
    data = read_yaml(case.read_text(encoding="utf-8"), str(case)).value
    data = shuffled(data, rng)
    directory.mkdir(parents=True)
    parts = {"a-listeners.yaml": {"listeners": data.get("listeners", [])}}
    parts["b-services.yaml"] = {"services": data.get("services", {})}
    for name in rng.sample(sorted(parts), len(parts)):
        (directory / name).write_text(yaml.safe_dump(parts[name], sort_keys=False), encoding="utf-8")


def digests(directories: list[Path], seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-m", "tests.digest_resources", *map(str, directories)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result: dict[str, str] = json.loads(out)
    return result


def test_output_is_identical_across_orders_and_hash_seeds(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    groups: dict[str, list[Path]] = {}
    for case in cases():
        groups[case.stem] = [tmp_path / case.stem / f"v{i}" for i in range(VARIANTS)]
        for directory in groups[case.stem]:
            write_variant(case, directory, rng)
    all_dirs = [d for dirs in groups.values() for d in dirs]
    runs = [digests(all_dirs, seed) for seed in SEEDS]
    for stem, dirs in groups.items():
        seen = {run[str(d)] for run in runs for d in dirs}
        assert len(seen) == 1, f"{stem}: {len(seen)} different outputs across orders and seeds"


def test_the_shuffle_does_reorder() -> None:
    """The test above can fail: the shuffle really changes the order of an order-free collection."""
    data = {"services": {f"s{i}": {} for i in range(20)}}
    assert list(shuffled(data, random.Random(1))["services"]) != list(data["services"])
