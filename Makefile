# One entry for setup, demo and tests. Each target builds the virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pulsegate sim xor --out out/xor --json out/xor/result.json
	$(BIN)/pulsegate golden ar2 --out out/ar2 --json out/ar2/result.json

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/pulsegate bench golden --json out/bench_golden.json
	$(BIN)/pulsegate bench blocks --json out/bench_blocks.json
	$(BIN)/pulsegate bench rtl --json out/bench_rtl.json
	$(BIN)/pulsegate bench boards --json out/bench_boards.json
	$(BIN)/pulsegate bench --json out/bench_roofline.json

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) out
