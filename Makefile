# Two commands do everything on a fresh machine (Python 3.11+ and pip):
#   make reproduce   all notebooks through papermill at PROFILE (default cpu), tables and figures in figures/
#   make test        the whole test suite (pytest, notebooks included at the smoke profile)
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= cpu
# The CPU build of torch; a GPU user installs the CUDA build of the same release first (see README).
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install reproduce test clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/tagvis reproduce --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests

clean:
	rm -rf $(VENV) runs
