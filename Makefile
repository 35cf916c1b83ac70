# The two commands a newcomer needs: `make demo` and `make test`. Everything else is for instructors.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The full CIFAR-10 (an image-folder export) where the course machines have it; the notebooks' tests use it when
# present, the embedded sample otherwise. Override with `make test CIFAR10=/path/to/copy`.
CIFAR10 ?= $(abspath $(firstword $(DLCOURSE_CIFAR10) $(wildcard ../shared/data/cifar10-jpeg.tar.gz)))

.PHONY: demo test install export nbtest pytest student solution samples autograde grades clean docs browser

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

pytest: $(STAMP) browser
	$(BIN)/python -m pytest

export: $(STAMP) ## regenerate dlcourse/ from nbs/
	$(BIN)/nbdev-export

# The documentation site in docs/: `make docs` (student site: exercises as stubs) or `make docs MODE=instructor`.
MODE ?= student
docs: $(STAMP) ## build the documentation site into docs/ (MODE=instructor adds solutions and reference answers)
	$(BIN)/python -m docsite --mode $(MODE)

# Headless Chromium for the docs' browser test (tests/test_docs.py), from Debian; where it can't be installed
# (not root, no apt) the browser part of the test skips and says why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium and chromium-driver for the docs' browser test"; \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null) \
	    || echo "could not install chromium: the docs' browser test will skip"; \
	else echo "chromium or chromedriver missing (install Debian's chromium and chromium-driver): the docs' browser test will skip"; fi

student solution samples grades: $(STAMP)
	$(BIN)/python -m grader $@

autograde: $(STAMP)
	$(BIN)/python -m grader autograde $(STUDENTS)

clean: ## remove generated course state (keeps .venv)
	rm -rf grader/source grader/release grader/solution grader/submitted grader/autograded grader/feedback \
	       grader/gradebook.db grader/grades.csv grader/nbgrader_config.py _docs _proc build/docs
