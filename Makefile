# newsqa — `make run` and `make test` work on a fresh machine (they create .venv first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NEWSQA := $(VENV)/bin/newsqa
DATA_DIR ?= ./data

.PHONY: install run test lint bench bench-ingest bench-embedders clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

run: install
	$(NEWSQA) ingest samples/ --data-dir $(DATA_DIR)
	$(NEWSQA) stats --data-dir $(DATA_DIR)
	@echo
	@echo "Ingested the sample article into $(DATA_DIR)."
	@echo "Add more:  $(NEWSQA) ingest PATH_OR_URL... --data-dir $(DATA_DIR)"
	@echo "List them: $(NEWSQA) articles --data-dir $(DATA_DIR)"
	@echo "(Asking questions arrives with the answer layer: newsqa ask / the web UI.)"

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: bench-ingest bench-embedders

bench-ingest: install
	$(PY) bench/ingest.py $(ARGS)

bench-embedders: install
	$(PY) bench/embedders.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
