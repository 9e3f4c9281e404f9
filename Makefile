# provider-sandbox: each target bootstraps .venv itself (Python 3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench browsers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,redis]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sandbox serve --host 127.0.0.1 --port 8080 --store sqlite:///sandbox.db

test: $(STAMP)
	$(BIN)/pytest -n auto

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) sandbox.db sandbox.db-wal sandbox.db-shm test-artifacts
