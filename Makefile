# medkit: every command a learner, an instructor or CI needs.
#   make lab            set up .venv (once) and open JupyterLab on the notebooks
#   make test           set up .venv (once) and run the unit tests and every notebook (nbval), in two processes
#   make lint           ruff over the package, the tests and the notebooks
#   make test-real      the real-data tests, and every notebook executed on REAL_DATA (a PneumoniaMNIST
#                       .npz or a Kermany folder; default ../shared/data/pneumoniamnist.npz); the real-data
#                       figures the notebooks record go to docs/results/pneumoniamnist.json, which their prose cites
#                       (NOTEBOOKS="notebooks/07_transformer.ipynb" runs only those and updates only their figures)
#   make test-portable  nbval again with one thread per process and without oneDNN, which change the order of
#                       floating-point sums as another CPU does: the checked outputs must not move
#   make notebooks      re-execute every notebook in place to refresh its outputs, then write the measured runtimes
#                       into the README and the notebook headers (tools/runtimes.py)
#   make student        student copies in build/student/: no solutions, no outputs, public checks (Otter-Grader)
#   make autograder     the instructor's grading bundle in build/autograder/ (every check; `otter run` grades)
#   make test-grading   grading tested on notebook 00 (solutions full marks, blank zero, one wrong answer fails its
#                       check), then every notebook's solutions graded: each must get full marks (runs every notebook)
#   make book           the course website in build/book/ (Sphinx, MyST-NB; fails on any warning)
#   make test-book      open every page of it in headless Chromium (apt-get install chromium): no JavaScript error,
#                       broken link, unrendered math or missing image; screenshots in build/book-screenshots/
#   make bench          benchmark every method on MEDKIT_DATASET (default: phantom), over 3 seeds
#   make badges         write every notebook's Colab/Kaggle/Binder badges and setup cell from pyproject.toml's
#                       [project.urls] Repository (a fork changes that line and runs this)
#   make constraints    record the installed versions in constraints.txt (after a green make test)
#   make test-colab     a fresh venv at Colab's versions (constraints-colab.txt): installing the kit must change none
#                       of them, and nbval must pass on every notebook there

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Notebooks are executed and tested with the default profile and dataset, and with
# the inline plot backend (a MPLBACKEND from the shell would keep figures out of them).
CLEAN_ENV := env -u MEDKIT_PROFILE -u MEDKIT_DATASET -u MPLBACKEND
# The tested versions; `make test CONSTRAINTS=` installs the newest releases instead.
CONSTRAINTS ?= constraints.txt
REAL_DATA ?= ../shared/data/pneumoniamnist.npz
CHROMIUM ?= /usr/bin/chromium
# Settings that change the order of floating-point reductions, as another machine's CPU would.
PORTABLE_ENV ?= TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 TF_ENABLE_ONEDNN_OPTS=0
# A cell's time limit catches a hung kernel; 08's shortcut cell took 892 s of it in a make test on a slow day.
NBVAL := --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=1800

.PHONY: lab test unit nbval notebooks student bench lint clean test-real test-portable test-colab constraints badges book test-book autograder test-grading

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# pip, and the build backend that tests/test_course.py builds the kit's wheel with, offline
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/python -m pip install --quiet -e '.[dev,lab,grading]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Containers often run as root, which JupyterLab refuses unless told.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# Two test processes (pytest-xdist), each taking whole test files: a notebook's cells run in order, in one kernel.
# On two cores, notebooks 04 and 05 took 0.69 of the time one process takes (399 s against 575 s, 2026-12-02).
# Files are handed out in the order given here (--no-loadscope-reorder): the notebooks slowest first, by their
# committed timings (tools/slowest_first.py), then the unit tests, so that the last files to start are short ones.
# --durations lists the slowest tests at the end. TEST_WORKERS=0 runs everything in one process.
# Each process's TensorFlow (and BLAS) gets its share of the cores, so that the processes do not compete for them:
# on 2 cores, two processes each fitting a CNN for 3 epochs took 42-46 s with TensorFlow's default 2 threads each,
# 36-39 s with 1 thread each (2026-12-07). The trained numbers move within the floating-point noise that
# make test-portable checks (it runs one thread per process too).
TEST_WORKERS ?= 2
CORES := $(shell nproc 2>/dev/null || echo 1)
WORKER_THREADS = $(shell w=$(TEST_WORKERS); c=$(CORES); [ "$$w" -gt 1 ] && c=$$((c / w)); echo $$((c > 0 ? c : 1)))
THREAD_ENV = TF_NUM_INTRAOP_THREADS=$(WORKER_THREADS) OMP_NUM_THREADS=$(WORKER_THREADS)
TEST_ORDER = $(shell $(PYTHON) tools/slowest_first.py) tests medkit
test: $(STAMP)
	$(CLEAN_ENV) $(THREAD_ENV) $(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder \
		--durations=20 -m "not real and not book and not grading" $(TEST_ORDER) $(NBVAL)

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not real and not book and not grading" tests medkit

# Execution only: on real data the printed numbers differ from the committed ones.
test-real: $(STAMP)
	test -e "$(REAL_DATA)" || { echo "no real data at $(REAL_DATA); set REAL_DATA=/path"; exit 2; }
	$(CLEAN_ENV) $(BIN)/python -m pytest -p no:cacheprovider -m real tests
	rm -rf build/real && mkdir -p build/real
	for nb in $(NOTEBOOKS); do \
		echo "executing $$nb on $(REAL_DATA)"; \
		$(CLEAN_ENV) MEDKIT_DATASET="$(abspath $(REAL_DATA))" MEDKIT_RESULTS="$(abspath build/real/figures.json)" \
			$(BIN)/jupyter nbconvert --to notebook --execute \
			--ExecutePreprocessor.timeout=900 --output-dir build/real "$$nb" || exit 1; \
	done
	# the real-data figures the notebooks recorded (medkit.results.record), into the file their prose cites
	$(BIN)/python -m medkit.results build/real/figures.json docs/results/pneumoniamnist.json --dataset "$(REAL_DATA)"

# Two processes of one thread each, as make test hands out the notebooks: one process alone would take over two hours.
test-portable: $(STAMP)
	$(CLEAN_ENV) $(PORTABLE_ENV) $(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope \
		--no-loadscope-reorder --durations=10 $(shell $(PYTHON) tools/slowest_first.py) $(NBVAL)

# Colab brings its own Jupyter and packages; a student's `%pip install` of the kit goes on top of them.
# Colab runs Python 3.13, and some of the versions it ships exist for 3.12 and newer only.
COLAB_VENV := build/colab-venv
COLAB_PYTHON ?= python3.13
test-colab:
	$(COLAB_PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 13)' || \
		{ echo "test-colab needs Python 3.13, as on Colab: set COLAB_PYTHON=/path/to/python3.13"; exit 2; }
	rm -rf $(COLAB_VENV) && mkdir -p build && $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet packaging -c constraints-colab.txt  # the script's one import
	$(COLAB_VENV)/bin/python .ci/colab_install.py
	$(COLAB_VENV)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(CLEAN_ENV) $(COLAB_VENV)/bin/python -m pytest -p no:cacheprovider notebooks $(NBVAL)

constraints: $(STAMP)
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^medkit'; } > constraints.tmp
	mv constraints.tmp constraints.txt

notebooks: $(STAMP)
	for nb in $(NOTEBOOKS); do \
		echo "executing $$nb"; \
		$(CLEAN_ENV) $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=900 "$$nb" || exit 1; \
	done
	$(BIN)/python tools/runtimes.py --write

badges: $(STAMP)
	$(BIN)/python tools/course.py

# Otter-Grader writes both from the committed notebooks (tools/assign.py), offline and without running them.
student autograder: $(STAMP)
	$(BIN)/python tools/assign.py --out build

# Grade every notebook's solutions with its autograder, as an instructor grades a submission (runs each notebook).
test-grading: autograder
	$(CLEAN_ENV) $(BIN)/python -m pytest -p no:cacheprovider -m grading tests/test_grading.py
	$(CLEAN_ENV) $(BIN)/python tools/assign.py --grade-solutions --out build

BOOK_STAMP := $(VENV)/.book-installed
$(BOOK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,lab,grading,book]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $(BOOK_STAMP)

# MathJax comes from npm so that the site renders math without a network; Sphinx stops on any warning.
book: $(BOOK_STAMP) student
	npm install --silent --no-save --no-audit --no-fund --prefix build/npm mathjax@3
	rm -rf build/book
	$(BIN)/python -m sphinx -b html -c docs -W --keep-going -q . build/book
	@echo "course website: build/book/index.html"

test-book: book
	test -x "$(CHROMIUM)" || { echo "test-book needs Chromium: apt-get install chromium (or set CHROMIUM=/path)"; exit 2; }
	CHROMIUM="$(CHROMIUM)" $(BIN)/python -m pytest -p no:cacheprovider -m book tests/test_book.py

bench: $(STAMP)
	$(BIN)/python -m medkit.bench --dataset $${MEDKIT_DATASET:-phantom} --methods all --seeds 3

lint: $(STAMP)
	$(BIN)/ruff check medkit tests notebooks tools docs .ci

clean:
	rm -rf build .pytest_cache
