"""The one-way flow, checked by reading imports: the pure core imports no I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PURE = ("model", "dsl", "translate")
FORBIDDEN = ("grpc", "kubernetes", "fastapi", "uvicorn", "starlette")
FORBIDDEN_INTERNAL = ("controlplane.sources", "controlplane.xds", "controlplane.status")


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", PURE)
def test_pure_core_imports_no_io(package: str) -> None:
    files = sorted((ROOT / "controlplane" / package).rglob("*.py"))
    assert files
    for path in files:
        for name in imported_modules(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.relative_to(ROOT)} imports {name}"
            assert not name.startswith(FORBIDDEN_INTERNAL), f"{path.relative_to(ROOT)} imports {name}"


def test_model_imports_neither_protobuf_nor_dsl() -> None:
    for path in sorted((ROOT / "controlplane" / "model").rglob("*.py")):
        for name in imported_modules(path):
            assert not name.startswith(("envoy", "google.protobuf", "controlplane.dsl", "pydantic")), path
