# sempix developer commands. The README's two set-up commands are `make example` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

.PHONY: example test lint install clean bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# main job: semantic seam carving of a photo from scikit-image's bundled data. `sempix warmup`
# compiles every numba kernel once (progress bar), so no tool's first command sits compiling.
example: $(STAMP)
	mkdir -p out
	$(BIN)/sempix warmup
	$(BIN)/python -m sempix.examples out

# lint: ruff (rules in pyproject.toml) and the import-layering check (tests/test_layering.py)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layering.py

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
