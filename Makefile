# medkit: every command a learner, an instructor or CI needs.
#   make lab        set up .venv (once) and open JupyterLab on the notebooks
#   make test       set up .venv (once) and run the unit tests and every notebook
#   make notebooks  re-execute every notebook in place to refresh its outputs
#   make student    write copies without solutions to build/student/
#   make bench      benchmark every method on MEDKIT_DATASET (default: phantom)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Notebooks are executed and tested with the default profile and dataset, and with
# the inline plot backend (a MPLBACKEND from the shell would keep figures out of them).
CLEAN_ENV := env -u MEDKIT_PROFILE -u MEDKIT_DATASET -u MPLBACKEND

.PHONY: lab test unit nbval notebooks student bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Containers often run as root, which JupyterLab refuses unless told.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	$(CLEAN_ENV) $(BIN)/python -m pytest -p no:cacheprovider tests medkit notebooks \
		--nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=900

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests medkit

notebooks: $(STAMP)
	for nb in $(NOTEBOOKS); do \
		echo "executing $$nb"; \
		$(CLEAN_ENV) $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=900 "$$nb" || exit 1; \
	done

student: $(STAMP)
	$(BIN)/python -m medkit.student notebooks build/student

bench: $(STAMP)
	$(BIN)/python -m medkit.bench --dataset $${MEDKIT_DATASET:-phantom} --methods all

lint: $(STAMP)
	$(BIN)/ruff check medkit tests notebooks

clean:
	rm -rf build .pytest_cache
