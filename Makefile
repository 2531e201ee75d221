# musicstream — the two commands of the README, and a few helpers.
#   make run            set up, generate a sample when DATA is not given, init, load, status, check
#   make test           set up, lint (ruff, mypy), then the test suite on real PostgreSQL

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?=
SAMPLE ?= sample

.PHONY: setup run lint pytest test test-deps bench soak clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

$(SAMPLE)/log_data: | $(BIN)/.installed
	$(BIN)/musicstream generate $(SAMPLE) --users 100 --days 30 --songs 500 --seed 1

run: setup $(if $(DATA),,$(SAMPLE)/log_data)
	$(BIN)/musicstream init
	$(BIN)/musicstream load $(or $(DATA),$(SAMPLE))
	$(BIN)/musicstream status
	$(BIN)/musicstream check

lint: setup
	$(BIN)/ruff check src tests benchmarks *.py
	$(BIN)/ruff format --check src tests benchmarks *.py
	$(BIN)/mypy src

# The tests need Debian's PostgreSQL 15 (the TCP + password test), Chromium (the HTML report test) and a Java 17
# runtime (the Spark engine's tests; PySpark, s3fs, moto and pyarrow come with the dev extras).
# Install what is missing (as root), else say how.
TEST_PACKAGES := $(if $(wildcard /usr/lib/postgresql/15/bin/initdb),,postgresql-15) \
                 $(if $(wildcard /usr/bin/chromium),,chromium) \
                 $(if $(shell command -v java),,$(if $(wildcard $(JAVA_HOME)/bin/java),,openjdk-17-jre-headless))
test-deps:
	@if [ -n "$(strip $(TEST_PACKAGES))" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEST_PACKAGES); \
	  else echo "The tests need: sudo apt-get install $(TEST_PACKAGES)" >&2; exit 1; fi; \
	fi

pytest: setup test-deps
	$(BIN)/pytest

test: lint pytest

# The benchmark of benchmarks/README.md: 100K and 1M events (add BENCH_ARGS=--large for 10M).
bench: setup
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# The long reliability run: 50 random-moment kills instead of 5, and a 2 GB single log file instead of 300 MB.
soak: setup test-deps
	MUSICSTREAM_SOAK=1 $(BIN)/pytest -s tests/test_crash.py tests/test_resources.py tests/test_hostile.py \
	  tests/test_concurrency.py tests/test_db_faults.py

clean:
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .mypy_cache .ruff_cache .hypothesis
