"""`make bench`: run every benchmark and print its table."""

from __future__ import annotations

from bench import convergence, kubernetes
from tests.kube.apiserver import binaries


def main() -> int:
    status = convergence.main([])
    if binaries() is None:
        print("SKIPPED bench.kubernetes: kube-apiserver is not built (python3 tests/kube/build.py)")
        return status or 1
    return status or kubernetes.main([])


if __name__ == "__main__":
    raise SystemExit(main())
