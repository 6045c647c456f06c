"""Golden cases: tests/golden/in/<case>.yaml -> tests/golden/out/<case>.<type>.yaml.

A case file may start with `# node-cluster: NAME` to render what Envoys of that node group get.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.dsl import load_files
from controlplane.render import dump, resources_to_data
from controlplane.translate import Resources, build_resources

GOLDEN = Path(__file__).resolve().parent / "golden"
IN = GOLDEN / "in"
OUT = GOLDEN / "out"


def cases() -> list[Path]:
    return sorted(IN.glob("*.yaml"))


def node_cluster_of(case: Path) -> str | None:
    first = case.read_text(encoding="utf-8").splitlines()[:1]
    if first and first[0].startswith("# node-cluster:"):
        return first[0].split(":", 1)[1].strip()
    return None


def resources_of(case: Path) -> Resources:
    return build_resources(load_files([str(case)]), node_cluster_of(case))


def rendered_outputs(case: Path) -> dict[Path, str]:
    """Expected output file -> its YAML text, one file per resource type."""
    data = resources_to_data(resources_of(case))
    return {OUT / f"{case.stem}.{kind}.yaml": dump(items, "yaml") for kind, items in data.items()}
