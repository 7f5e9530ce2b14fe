# Quickstart targets; each sets up .venv on first use.
#   make demo        set up, then run the OPD sweep on the embedded default (toy world, CPU): 3 coefficients x 3 seeds
#   make test        set up, then run every test tier but the toy-world rebuild, on every core (minutes)
#   make test-slow   the toy-world rebuild tier (about ten minutes); CI runs both
PYTHON ?= python3
VENV ?= .venv
# On CPU machines this is a CPU wheel; GPU users: TORCH_SPEC="torch" (or pre-install your CUDA torch).
TORCH_SPEC ?= torch==2.13.0
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-slow toy
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(VENV)/bin/python -m suite.sweep -m opd_kl_coef=0.5,1,2 seed=0,1,2

toy: setup
	$(VENV)/bin/python -m suite.toyworld.build

# Tests spread over the cores one by one; the SGLang tier's tests stay on one worker (xdist_group), with
# its one server.
test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/python -m pytest -m "not slow" -n auto --dist loadgroup

test-slow: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/python -m pytest -m slow
