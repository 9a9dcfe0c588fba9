# Set-up and entry points. `make smoke` and `make test` are all a new user needs.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel on this machine's disk; on a GPU machine e.g. `make install TORCH_SPEC='torch==2.9.1'`.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-slow smoke bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	# DeepSpeed builds against the torch above, so it must not get an isolated build with another torch.
	$(BIN)/pip install -q --no-build-isolation deepspeed
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

# lint-imports checks the layers declared in pyproject.toml ([tool.importlinter]) before the tests run.
test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

smoke: install
	$(BIN)/ladder run ladder=smoke

bench: install
	@for script in scripts/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
