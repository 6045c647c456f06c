# Two commands for a new user: `make demo` and `make test`. Both create .venv from the repo's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-smoke protos lint typecheck unit golden clean chromium kube-apiserver kube-apiserver-background

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/controlplane demo

test: kube-apiserver-background $(STAMP) chromium lint typecheck
	$(BIN)/pytest -q

# The Kubernetes tests run against a real kube-apiserver + etcd, built once from Debian's source
# package and cached in ~/.cache/controlplane (about 5 minutes the first time). `make test`
# builds it in the background at the lowest CPU priority while everything else runs; the
# Kubernetes tests run last and wait for it (tests/kube/conftest.py). In CI (CI=true) a failed
# build fails those tests; elsewhere they are skipped loudly, with the reason and the build log.
kube-apiserver-background:
	@mkdir -p .kube-build && rm -f .kube-build/status
	@( nice -n 19 $(PYTHON) tests/kube/build.py >.kube-build/log 2>&1; echo $$? >.kube-build/status ) & \
	  echo $$! >.kube-build/pid

kube-apiserver:
	@$(PYTHON) tests/kube/build.py >/dev/null || [ "$$CI" != "true" ]

# The status page is tested in a real browser: Debian's headless Chromium, installed when missing.
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Benchmarks S1-S7 with real Envoy processes (minutes, not part of `make test`): bench/results/*.json,
# *.md and summary.md (docs/performance.md). The edit -> ACK benchmarks of earlier issues stay runnable:
# `python -m bench.convergence`, `python -m bench.kubernetes`.
bench: $(STAMP)
	$(BIN)/python -m bench.run

# The same scenarios at tiny sizes (2 Envoys, 20 clusters; under a minute), results in a temporary
# directory; tests/test_bench_smoke.py runs it under `make test` so the benchmarks cannot rot.
bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke

# Regenerate the checked-in Python code of protos/ (a test fails when it is stale).
protos: $(STAMP)
	$(BIN)/python protos/generate.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Rewrite tests/golden/out from tests/golden/in (review the diff before committing).
golden: $(STAMP)
	$(BIN)/pytest -q tests/test_golden.py --update-golden

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
