"""Generate the Python code of protos/ into the package (or into OUT_DIR, for the staleness test).

Usage: python protos/generate.py [OUT_DIR]     (default: the repository root)
The generated files are checked in, so installing the package needs no code generator.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
ROOT = PROTOS.parent
SOURCES = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Run protoc for every .proto file; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    if protoc.main([*args, *SOURCES]) != 0:
        raise SystemExit("protoc failed")
    written = sorted(out / Path(s).with_suffix("") for s in SOURCES)
    written = sorted(p for s in written for p in s.parent.glob(f"{s.name}_pb2*"))
    for path in written:
        for package in path.relative_to(out).parents[:-1]:
            init = out / package / "__init__.py"
            if not init.exists():
                init.write_text('"""Generated from protos/ by protos/generate.py."""\n', encoding="utf-8")
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    for path in generate(target):
        print(path.relative_to(target))
