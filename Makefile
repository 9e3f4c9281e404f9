# provider-sandbox: each target bootstraps .venv itself (Python 3.11+), pinned by constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --quiet -c constraints.txt
RUNTIME_STAMP := $(VENV)/.runtime
DEV_STAMP     := $(VENV)/.installed

# `make run` honours PORT, STORE, SEED (or SANDBOX_PORT, SANDBOX_STORE, SANDBOX_SEED) and passes every other
# SANDBOX_* variable of the environment through to `sandbox serve` (see README "Configuration").
PORT  ?= $(or $(SANDBOX_PORT),8080)
STORE ?= $(or $(SANDBOX_STORE),sqlite:///sandbox.db)
SEED  ?= $(or $(SANDBOX_SEED),0)

.PHONY: run test bench clean mutate lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# runtime dependencies only (and redis): what serving needs
$(RUNTIME_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[redis]'
	touch $@

# the test toolchain on top, for make test / bench
$(DEV_STAMP): $(RUNTIME_STAMP)
	$(PIP) -e '.[dev,redis]'
	touch $@

run: $(RUNTIME_STAMP)
	SANDBOX_PORT=$(PORT) SANDBOX_STORE=$(STORE) SANDBOX_SEED=$(SEED) $(BIN)/sandbox serve

test: $(DEV_STAMP)
	$(BIN)/pytest -n auto

bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py $(if $(filter-out 0,$(PEERS)),--peers)

# constraints.txt from a fresh venv: the newest releases pyproject.toml allows, then `make test` before committing
lock:
	rm -rf /tmp/provider-sandbox-lock && $(PYTHON) -m venv /tmp/provider-sandbox-lock
	/tmp/provider-sandbox-lock/bin/pip install --quiet --upgrade pip
	/tmp/provider-sandbox-lock/bin/pip install --quiet '.[dev,redis]'
	{ sed -n '1,3p' constraints.txt; /tmp/provider-sandbox-lock/bin/pip freeze --exclude-editable \
	  | grep -iv '^provider.sandbox'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

# Mutation testing (mutmut 3; installed here, not in the dev extras: it brings a TUI and coverage) of the modules
# that guard trust (auth, jobs, flows, the providers' services) against the fast tests that cover them. Runs on a
# copy in MUTATE_DIR (its own setup.cfg), takes long (not in CI), ends with the score; `cd $(MUTATE_DIR) &&
# $(CURDIR)/$(BIN)/mutmut show <mutant>` shows one. Narrow it with MUTATE_PATHS=... / MUTATE_TESTS=....
MUTATE_DIR   ?= /tmp/provider-sandbox-mutate
MUTATE_PATHS ?= sandbox/core/auth.py sandbox/core/jobs.py sandbox/core/flows.py \
                sandbox/providers/open_finance/service.py sandbox/providers/finleap/service.py
MUTATE_TESTS ?= tests/test_auth_journal_admin.py tests/test_clock_jobs_ids.py tests/test_flows.py \
                tests/test_trust_regressions.py tests/test_isolation_matrix.py $(wildcard tests/test_mutants_*.py)
MUTATE_JOBS  ?= $(shell nproc 2>/dev/null || echo 2)

mutate: $(DEV_STAMP)
	$(BIN)/pip install --quiet 'mutmut>=3.8,<4'
	rm -rf $(MUTATE_DIR) && mkdir -p $(MUTATE_DIR)
	tar -cf - sandbox contract_tests tests pyproject.toml | tar -xf - -C $(MUTATE_DIR)
	{ echo '[mutmut]'; echo 'only_mutate='; for p in $(MUTATE_PATHS); do echo "    $$p"; done; \
	  echo 'source_paths='; echo '    sandbox'; \
	  echo 'also_copy='; for p in contract_tests pyproject.toml; do echo "    $$p"; done; \
	  echo 'pytest_add_cli_args_test_selection='; for t in $(MUTATE_TESTS); do echo "    $$t"; done; \
	  echo 'pytest_add_cli_args='; for a in -p no:xdist -p no:cacheprovider; do echo "    $$a"; done; \
	} > $(MUTATE_DIR)/setup.cfg
	cd $(MUTATE_DIR) && $(CURDIR)/$(BIN)/mutmut run --max-children $(MUTATE_JOBS) > mutmut-run.log 2>&1 || \
	  { tail -c 3000 mutmut-run.log; exit 1; }
	cd $(MUTATE_DIR) && $(CURDIR)/$(BIN)/mutmut export-cicd-stats >/dev/null && \
	  $(CURDIR)/$(BIN)/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	  print("mutation score: %d killed of %d mutants (%d survived, %d timeout, %d without tests)" % (s["killed"], \
	  s["total"], s["survived"], s["timeout"], s["no_tests"]))'
	cd $(MUTATE_DIR) && $(CURDIR)/$(BIN)/mutmut results

clean:
	rm -rf $(VENV) sandbox.db sandbox.db-wal sandbox.db-shm test-artifacts
