"""`make bench`: run every benchmark and print its table."""

from __future__ import annotations

from bench import convergence


def main() -> int:
    return convergence.main([])


if __name__ == "__main__":
    raise SystemExit(main())
