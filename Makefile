# The two commands a newcomer needs: `make demo` and `make test`. Everything else is for instructors.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The full CIFAR-10 (an image-folder export) where the course machines have it; the notebooks' tests use it when
# present, the embedded sample otherwise. Override with `make test CIFAR10=/path/to/copy`.
CIFAR10 ?= $(abspath $(firstword $(DLCOURSE_CIFAR10) $(wildcard ../shared/data/cifar10-jpeg.tar.gz)))

.PHONY: demo test install export nbtest pytest student solution samples autograde grades clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install dlcourse with its dev tools

demo: $(STAMP) ## export the library, build the student version, autograde the sample submissions
	$(BIN)/python -m grader demo

test: nbtest pytest ## the whole test suite: notebooks, then library and pipeline

nbtest: $(STAMP)
	DLCOURSE_CIFAR10=$(CIFAR10) $(BIN)/nbdev-test

pytest: $(STAMP)
	$(BIN)/python -m pytest

export: $(STAMP) ## regenerate dlcourse/ from nbs/
	$(BIN)/nbdev-export

student solution samples grades: $(STAMP)
	$(BIN)/python -m grader $@

autograde: $(STAMP)
	$(BIN)/python -m grader autograde $(STUDENTS)

clean: ## remove generated course state (keeps .venv)
	rm -rf grader/source grader/release grader/solution grader/submitted grader/autograded grader/feedback \
	       grader/gradebook.db grader/grades.csv grader/nbgrader_config.py _docs _proc

# Part 5: the study's long check (every run of the 34, one batch each) and the benchmarks; neither is in `make test`
.PHONY: study-check bench
study-check: $(STAMP)
	rm -rf .study-check && $(BIN)/python -m dlcourse.experiments run-study --profile smoke -o .study-check && rm -rf .study-check

bench: $(STAMP)
	$(BIN)/python bench/loader.py --threads 1
	$(BIN)/python bench/layers.py --threads 1
