# The two commands of the README. Both create .venv first if it is missing (scripts/setup_env.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ld-repro-complete
# Snakemake finds its workflow profile (workflow/profiles/default) through profiles/, as a plain `snakemake` does.
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: reproduce test test-unit test-slow rehearse rehearse-slurm env dag clean

reproduce: $(STAMP)  ## run the whole DAG on the embedded default
	$(SNAKEMAKE) --cores all

test: $(STAMP)  ## the default test suite (tests/unit + the fast tests/workflow: dry runs, tiny real DAGs)
	$(PY) -m pytest

test-unit: $(STAMP)  ## the quick loop: tests/unit only (never starts Snakemake)
	$(PY) -m pytest tests/unit

test-slow: $(STAMP)  ## end-to-end tests that take minutes
	$(PY) -m pytest -m slow

REHEARSAL_INPUTS := rm -rf rehearsal && $(PY) -m ld_core rehearsal-data --out rehearsal/inputs

rehearse: $(STAMP)  ## every run of Tables 1-4 at the paper profile, capped at 2 iterations, on generated inputs
	$(REHEARSAL_INPUTS)
	$(SNAKEMAKE) --cores all --keep-going --configfile configs/rehearsal.yaml

# The same rehearsal submitted through workflow/profiles/slurm to the fake SLURM of tests/stubs: each stub sbatch
# runs its 1-thread job on this machine (on 2 cores Snakemake had two running at once, as `make rehearse` does).
# Submissions and their states: rehearsal/slurm/sbatch.jsonl.
rehearse-slurm: $(STAMP)  ## `make rehearse` through the SLURM profile, against the stub sbatch/sacct
	$(REHEARSAL_INPUTS)
	PATH="$(CURDIR)/tests/stubs:$$PATH" STUB_SLURM_DIR="$(CURDIR)/rehearsal/slurm" STUB_SLURM_PYTHON="$(PY)" \
	  $(SNAKEMAKE) --profile workflow/profiles/slurm --latency-wait 5 --seconds-between-status-checks 1 \
	  --slurm-init-seconds-before-status-checks 1 --configfile configs/rehearsal.yaml

env: $(STAMP)

$(STAMP): scripts/setup_env.sh requirements.txt pyproject.toml
	bash scripts/setup_env.sh

dag: $(STAMP)  ## rule graph picture (needs graphviz's dot)
	$(VENV)/bin/snakemake --rulegraph | dot -Tpng -Gdpi=80 > docs/rulegraph.png

clean:  ## remove generated results (keeps the environment)
	rm -rf results/data results/runs results/work results/tables results/logs .snakemake
