# The two commands a newcomer needs: `make demo` and `make test`. Everything else is for instructors.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The full CIFAR-10 (an image-folder export) where the course machines have it; the notebooks' tests use it when
# present, the embedded sample otherwise. Override with `make test CIFAR10=/path/to/copy`.
CIFAR10 ?= $(abspath $(firstword $(DLCOURSE_CIFAR10) $(wildcard ../shared/data/cifar10-jpeg.tar.gz)))

.PHONY: demo test test-quick install sysdeps export nbtest pytest student solution samples collect autograde feedback grades clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install dlcourse with its dev tools

# System tools from Debian: command:package. Installed with apt-get where one is root and they are missing;
# elsewhere a warning says what to install. The grading sandbox refuses to start without bubblewrap; the browser
# tests (docs, math, formgrader) need Chromium; the Slurm tests start a one-node Slurm (slurm-wlm: slurmctld, slurmd
# and slurm-client; munge). tests/conftest.py reads this list: where `make sysdeps` can install (root with apt-get),
# `make test` fails a test that needs one of these tools instead of skipping it.
SYSTEM_TOOLS := bwrap:bubblewrap setpriv:util-linux chromium:chromium chromedriver:chromium-driver \
                sbatch:slurm-client slurmctld:slurmctld slurmd:slurmd munged:munge
# a command on PATH or in the sbin folders (the Slurm and munge daemons live there)
found = $(firstword $(wildcard $(addsuffix /$(1),$(subst :, ,$(PATH)) /usr/sbin /sbin)))
sysdeps:
	@missing="$(foreach t,$(SYSTEM_TOOLS),$(if $(call found,$(firstword $(subst :, ,$(t)))),,$(lastword $(subst :, ,$(t)))))"; \
	missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing (apt-get)"; (apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "warning: could not install $$missing"; \
	  else echo "warning: missing system packages: $$missing (install them with your package manager)"; fi; \
	fi
# 1 where `make sysdeps` can install the tools: a test that would skip for want of one fails instead (`make test
# SYSDEPS_REQUIRED=` turns that off)
SYSDEPS_REQUIRED ?= $(shell [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && echo 1)

demo: $(STAMP) sysdeps ## export the library, build the student version, autograde the sample submissions
	$(BIN)/python -m grader demo

test: nbtest pytest ## the whole test suite: notebooks, then library and pipeline

nbtest: $(STAMP)
	DLCOURSE_CIFAR10=$(CIFAR10) $(BIN)/nbdev-test

pytest: $(STAMP) sysdeps
	DLCOURSE_SYSDEPS_REQUIRED=$(SYSDEPS_REQUIRED) $(BIN)/python -m pytest

# The edit-test loop: every test not marked `slow` (layers, optimizers, trainers, judges, the bank's mutants...),
# a few minutes on 2 cores; no notebooks, no grading of whole submissions, no sandbox, browser or Slurm.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

export: $(STAMP) ## regenerate dlcourse/ from nbs/
	$(BIN)/nbdev-export

# The documentation site in docs/: `make docs` (student site: exercises as stubs) or `make docs MODE=instructor`.
MODE ?= student
docs: $(STAMP) ## build the documentation site into docs/ (MODE=instructor adds solutions and reference answers)
	$(BIN)/python -m docsite --mode $(MODE)

student solution samples feedback grades: $(STAMP)
	$(BIN)/python -m grader $@

# An LMS download (or students' zips or folders) filed in grader/submitted/: make collect FROM="submissions.zip"
collect: $(STAMP)
	$(BIN)/python -m grader collect $(FROM)

autograde: $(STAMP) sysdeps
	$(BIN)/python -m grader autograde $(if $(SLURM),--slurm) $(STUDENTS)

# A whole course: N generated submissions (bugs, resubmissions, hostile ones) graded in build/demo-course/.
# PARTS=part1_backprop grades that notebook alone (a full submission is ~45 s of 2 cores); SLURM=1 grades on Slurm.
N ?= 100
.PHONY: demo-course test-course
demo-course: $(STAMP) sysdeps
	$(BIN)/python -m grader demo-course -n $(N) $(if $(PARTS),--parts $(PARTS)) $(if $(SLURM),--slurm)

# What the course hands out: the student edition (any time) and the reference library (after the deadline).
.PHONY: student-edition dist test-edition
student-edition: $(STAMP) ## dist/<assignment>-student.tar.gz: release notebooks, stub package, helpers, self-check
	$(BIN)/python -m grader student-edition

dist: $(STAMP) ## wheel and sdist of the reference library in dist/ (it holds the solutions)
	rm -f dist/dlcourse-*.whl dist/dlcourse-*.tar.gz
	$(BIN)/python -m build --no-isolation --outdir dist .

test-edition: $(STAMP) ## the student edition's self-check on every notebook, blank and finished (minutes)
	DLCOURSE_EDITION_FULL=1 $(BIN)/python -m pytest tests/test_student_edition.py

clean: ## remove generated course state (keeps .venv)
	rm -rf grader/source grader/release grader/solution grader/submitted grader/autograded grader/feedback \
	       grader/gradebook.db grader/grades.csv grader/grades_by_part.csv grader/grades_lms.csv grader/batch \
	       grader/nbgrader_config.py grader/downloaded \
	       _docs _proc build/docs build/demo-course

# Part 5: the study's long check (every run of the 34, one batch each) and the benchmarks; neither is in `make test`
.PHONY: study-check bench
study-check: $(STAMP)
	rm -rf .study-check && $(BIN)/python -m dlcourse.experiments run-study --profile smoke -o .study-check && rm -rf .study-check

bench: $(STAMP)
	$(BIN)/python bench/loader.py --threads 1
	$(BIN)/python bench/layers.py --threads 1
	$(BIN)/python bench/sandbox_overhead.py
	$(BIN)/python bench/course_throughput.py

# Everything that needs CUDA in one go, one report in OUT (report.md, report.json), within BUDGET seconds; DRY=1 is its
# dry run on a CPU (in `make test`). No install step: a GPU machine has no network (guide/gpucheck.md).
# make gpu-check OUT=folder [CIFAR10=data/cifar10-jpeg.tar.gz] [DRY=1] [BUDGET=480]
.PHONY: gpu-check gpu-wheels
BUDGET ?= 480
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-check:
	$(if $(OUT),,$(error OUT=folder is required: where report.md and report.json go))
	$(GPU_PYTHON) bench/gpu_check.py --out $(OUT) --budget $(BUDGET) $(if $(DRY),--dry,--cifar10 $(CIFAR10))

# What gpu-check needs on a GPU machine whose PyTorch image lacks the grading tools: wheels for its Python in .whl/
GPU_PY ?= 3.12
gpu-wheels:
	$(GPU_PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version $(GPU_PY) --implementation cp \
	  $(foreach p,manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64,--platform $(p)) \
	  -d .whl -r bench/gpu_requirements.txt
	cd .whl && apt-get download bubblewrap || echo "warning: no bubblewrap package: gpu-check grades without the sandbox"
	du -sh .whl
