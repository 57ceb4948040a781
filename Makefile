# Two set-up commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test test-slow serve lint format clean

# The exact tested set (constraints.txt), with torch==2.13.0 in the same pip command as
# everything that depends on it (the CPU build; otherwise pip may fetch a multi-GB CUDA one).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0 -e '.[dev]'
	$(BIN)/python -m compileall -q src  # bytecode now: where PYTHONDONTWRITEBYTECODE is set, every start would compile
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/pytest -n 2 -m slow $(PYTEST_ARGS)

# With the shipped demo model: text + first frame + audio from examples/ -> out/demo.mp4.
demo: $(STAMP)
	$(BIN)/tia2v generate --model checkpoints/demo --text "$$(cat examples/prompt.txt)" \
	  --image examples/first.png --audio examples/beats.wav -o out/demo.mp4

# The web demo on http://127.0.0.1:7860 with the shipped model (Ctrl-C stops it).
serve: $(STAMP)
	$(BIN)/tia2v serve --model checkpoints/demo

clean:
	rm -rf out .pytest_cache .ruff_cache
