# Two set-up commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint format ffmpeg clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is pinned in the same install as everything that depends on it.
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Tests read fixtures made by the Debian ffmpeg CLI.
ffmpeg:
	@command -v ffmpeg >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) ffmpeg lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-slow: $(STAMP) ffmpeg
	$(BIN)/pytest -n 2 -m slow $(PYTEST_ARGS)

# With the shipped demo model: text + first frame + audio from examples/ -> out/demo.mp4.
# Until checkpoints/demo exists, the demo runs the most complete real job there is instead:
# synthesise a small toy-VAT set, validate it and show what was written.
demo: $(STAMP)
	@if [ -f checkpoints/demo/config.yaml ]; then \
	  $(BIN)/tia2v generate --model checkpoints/demo --text "$$(cat examples/prompt.txt)" \
	    --image examples/first.png --audio examples/beats.wav -o out/demo.mp4; \
	else \
	  echo "tia2v demo: no demo model is shipped yet (scripts/train_demo.sh trains it); running the data pipeline instead."; \
	  $(BIN)/tia2v --quiet synth out/toy --train 8 --test 4 --seed 0 && \
	  $(BIN)/tia2v --quiet prepare out/toy --check --config demo && \
	  echo "example clip: out/toy/test/mp4/test_00000.mp4 (with sound), caption: $$(cat out/toy/test/txt/test_00000.txt)"; \
	fi

clean:
	rm -rf out .pytest_cache .ruff_cache
