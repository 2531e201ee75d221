# musicstream — the two commands of the README, and a few helpers.
#   make run            install the package, init the embedded database, load data/ (or DATA=...), status, check
#   make test           install the package with its development extras, lint (ruff, mypy), then the test suite
#   make test-fast      the tests that need no PostgreSQL, no JVM and no browser (the fast lane; under a minute)
#   make sample         generate a synthetic sample and load it into a state folder of its own

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data
SAMPLE ?= sample
# The generated sample's own state folder (its own embedded database): synthetic rows never mix with real ones.
SAMPLE_HOME ?= $(SAMPLE)/.musicstream

.PHONY: setup setup-run run sample lint pytest test test-fast test-deps bench soak mutate clean

# Running needs the package only; the tests need the development extras (PySpark, moto, notebooks, ...).
$(BIN)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(BIN)/.installed-run

setup-run: $(BIN)/.installed-run
setup: $(BIN)/.installed

run: setup-run
	$(BIN)/musicstream init
	$(BIN)/musicstream load $(DATA)
	$(BIN)/musicstream status
	$(BIN)/musicstream check

$(SAMPLE)/log_data: | $(BIN)/.installed-run
	$(BIN)/musicstream generate $(SAMPLE) --users 100 --days 30 --songs 500 --seed 1

sample: setup-run $(SAMPLE)/log_data
	$(BIN)/musicstream --home $(SAMPLE_HOME) init
	$(BIN)/musicstream --home $(SAMPLE_HOME) load $(SAMPLE)
	$(BIN)/musicstream --home $(SAMPLE_HOME) status

lint: setup
	$(BIN)/ruff check src tests benchmarks docs *.py
	$(BIN)/ruff format --check src tests benchmarks docs *.py
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

# Three worker processes (pytest-xdist), a test file each at a time: many tests wait on PostgreSQL, Spark's JVMs
# or a subprocess, and with two a 2-core machine was idle for about a sixth of the run; three keep both cores
# busy. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 3
pytest: setup test-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20

test: lint pytest

# The fast lane: tests/conftest.py marks every test that uses PostgreSQL, Spark or Chromium (db, spark, browser);
# the others run here, in one process, with a tenth of each property test's examples. Needs none of test-deps.
FAST_LANE := not db and not spark and not browser
test-fast: setup
	$(BIN)/pytest -m "$(FAST_LANE)" --hypothesis-profile=fast --durations=5

# The benchmark of benchmarks/README.md: 100K and 1M events (add BENCH_ARGS=--large for 10M).
bench: setup
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# The long reliability run: 50 random-moment kills instead of 5, and a 2 GB single log file instead of 300 MB.
soak: setup test-deps
	MUSICSTREAM_SOAK=1 $(BIN)/pytest -s tests/test_crash.py tests/test_resources.py tests/test_hostile.py \
	  tests/test_concurrency.py tests/test_db_faults.py

# Plant small bugs in the rules one at a time and check the tests catch each (tests/mutate.py; not in CI).
mutate: setup test-deps
	$(BIN)/python tests/mutate.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The command-line reference, docs/cli.md, written again from every command's --help (tests/test_docs.py fails when
# it is not current).
.PHONY: docs
docs: setup-run
	$(BIN)/python docs/gen_cli.py
