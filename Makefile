# One entry for setup, demo and tests. Each target builds the virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench formal mutation lint clean distclean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pulsegate sim xor --out build/out/xor --json build/out/xor/result.json
	$(BIN)/pulsegate golden ar2 --out build/out/ar2 --json build/out/ar2/result.json

# The suite's tests on every core (pytest-xdist); `TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -n $(TEST_WORKERS)

bench: $(STAMP)
	$(BIN)/pulsegate bench golden --json build/out/bench_golden.json
	$(BIN)/pulsegate bench blocks --json build/out/bench_blocks.json
	$(BIN)/pulsegate bench rtl --json build/out/bench_rtl.json
	$(BIN)/pulsegate bench boards --json build/out/bench_boards.json
	$(BIN)/pulsegate bench --json build/out/bench_roofline.json

formal: $(STAMP)
	$(BIN)/python -m sim.formal
	$(BIN)/python -m boards.link_formal
	$(BIN)/python -m sim.sequencer_formal

mutation: $(STAMP)
	$(BIN)/python -m sim.mutation --per-tick --json build/mutation/report.json

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Every generated output and cache; the virtual environment stays (see distclean).
clean:
	rm -rf out build .hypothesis .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
