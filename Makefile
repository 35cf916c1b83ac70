# The two commands a newcomer needs: `make demo` and `make test`. Everything else is for instructors.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The full CIFAR-10 (an image-folder export) where the course machines have it; the notebooks' tests use it when
# present, the embedded sample otherwise. Override with `make test CIFAR10=/path/to/copy`.
CIFAR10 ?= $(abspath $(firstword $(DLCOURSE_CIFAR10) $(wildcard ../shared/data/cifar10-jpeg.tar.gz)))

.PHONY: demo test install sysdeps export nbtest pytest student solution samples autograde grades clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install dlcourse with its dev tools

# System tools from Debian: command:package. Installed with apt-get where one is root and they are missing;
# elsewhere a warning says what to install (the grading sandbox refuses to start without bubblewrap).
SYSTEM_TOOLS := bwrap:bubblewrap setpriv:util-linux
sysdeps:
	@missing="$(foreach t,$(SYSTEM_TOOLS),$(if $(shell command -v $(firstword $(subst :, ,$(t)))),,$(lastword $(subst :, ,$(t)))))"; \
	missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing (apt-get)"; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing system packages: $$missing (install them with your package manager)"; fi; \
	fi

demo: $(STAMP) sysdeps ## export the library, build the student version, autograde the sample submissions
	$(BIN)/python -m grader demo

test: nbtest pytest ## the whole test suite: notebooks, then library and pipeline

nbtest: $(STAMP)
	DLCOURSE_CIFAR10=$(CIFAR10) $(BIN)/nbdev-test

pytest: $(STAMP) sysdeps
	$(BIN)/python -m pytest

export: $(STAMP) ## regenerate dlcourse/ from nbs/
	$(BIN)/nbdev-export

student solution samples grades: $(STAMP)
	$(BIN)/python -m grader $@

autograde: $(STAMP) sysdeps
	$(BIN)/python -m grader autograde $(STUDENTS)

clean: ## remove generated course state (keeps .venv)
	rm -rf grader/source grader/release grader/solution grader/submitted grader/autograded grader/feedback \
	       grader/gradebook.db grader/grades.csv grader/nbgrader_config.py _docs _proc
