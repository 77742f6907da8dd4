# The two commands of the README. Both create .venv first if it is missing (scripts/setup_env.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ld-repro-complete

.PHONY: reproduce test test-slow env dag clean

reproduce: $(STAMP)  ## run the whole DAG on the embedded default
	$(VENV)/bin/snakemake --cores all

test: $(STAMP)  ## the default test suite (unit tests, dry run, a tiny real DAG)
	$(PY) -m pytest

test-slow: $(STAMP)  ## end-to-end tests that take minutes
	$(PY) -m pytest -m slow

env: $(STAMP)

$(STAMP): scripts/setup_env.sh requirements.txt pyproject.toml
	bash scripts/setup_env.sh

dag: $(STAMP)  ## rule graph picture (needs graphviz's dot)
	$(VENV)/bin/snakemake --rulegraph | dot -Tpng -Gdpi=80 > docs/rulegraph.png

clean:  ## remove generated results (keeps the environment)
	rm -rf results/data results/runs results/work results/tables results/logs .snakemake
