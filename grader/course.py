"""The nbgrader course in `grader/`, driven by `settings.ini`.

One chapter notebook in `nbs/` is the nbgrader *source* notebook of one part. From it we build
the student version (`release/`), the solution version (`solution/`), autograde what lies in
`submitted/` and export `grades.csv`, all with nbgrader's own command-line tools.
"""
import configparser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat
import nbgrader
from nbgrader.api import Gradebook

import dlcourse
from dlcourse.authoring import (HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, given_lines, remove_hidden_tests,
                                solution_lines)
from grader.formgrader import MARK_SCHEME_BEGIN, is_written_answer, split_rubric

ROOT = Path(__file__).resolve().parent.parent
COURSE_DIR = ROOT / "grader"
NBS_DIR = ROOT / "nbs"
ASSETS_DIR = ROOT / "tests" / "assets"
TEMPLATES_DIR = COURSE_DIR / "templates"
NBGRADER_TEMPLATES = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
# The MathJax 3 of feedback pages: the sphinx-mathjax-offline wheel's (the docs site's), one file with every TeX
# package and SVG output (no fonts to fetch), copied next to the pages (grader/templates/feedback/mathjax.html.j2)
MATHJAX_FILE = "tex-svg-full.js"
MATHJAX_URL = f"mathjax/{MATHJAX_FILE}"


class CourseError(Exception):
    "A problem the instructor has to fix; the message says what to do."


@dataclass(frozen=True)
class Settings:
    course_id: str
    assignment_id: str
    parts: tuple
    student_package: str
    cell_timeout: int
    notebook_timeout: int
    kernel: str
    runner: str
    workers: int
    max_output_lines: int
    max_output_kb: int
    memory_limit_gb: float
    max_processes: int
    max_file_mb: int
    samples: tuple
    device: str = "cpu"
    collect_pattern: str = ""
    collect_timezone: str = ""


def load_settings(path=ROOT / "settings.ini") -> Settings:
    "Read and check the course settings."
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#",))
    if not cfg.read(path):
        raise CourseError(f"{path} is missing: it holds the course and grading settings")
    try:
        course, grading, demo = cfg["course"], cfg["grading"], cfg["demo"]
        settings = Settings(
            course_id=course["course_id"],
            assignment_id=course["assignment_id"],
            parts=tuple(course["parts"].split()),
            student_package=course["student_package"],
            cell_timeout=grading.getint("cell_timeout"),
            notebook_timeout=grading.getint("notebook_timeout"),
            kernel=grading["kernel"],
            runner=grading["runner"],
            workers=grading.getint("workers", 1),
            max_output_lines=grading.getint("max_output_lines"),
            max_output_kb=grading.getint("max_output_kb", 1024),
            memory_limit_gb=grading.getfloat("memory_limit_gb", 8),
            max_processes=grading.getint("max_processes", 256),
            max_file_mb=grading.getint("max_file_mb", 1024),
            samples=tuple(demo["samples"].split()),
            device=grading.get("device", "cpu"),
            collect_pattern=cfg.get("collect", "pattern", fallback="", raw=True),
            collect_timezone=cfg.get("collect", "timezone", fallback=""),
        )
    except (KeyError, ValueError) as e:
        raise CourseError(f"{path}: missing or malformed setting {e}; see the comments in the file") from e
    if settings.device not in ("cpu", "cuda"):
        raise CourseError(f"{path}: device = {settings.device!r}; choose cpu or cuda")
    missing = [p for p in settings.parts if not (NBS_DIR / f"{p}.ipynb").exists()]
    if missing:
        raise CourseError(f"{path}: parts {missing} have no notebook in {NBS_DIR}")
    return settings


NBGRADER_CONFIG = """\
# Generated from settings.ini by `python -m grader`: edit settings.ini, not this file.
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, IncludeHeaderFooter, LockCells

c = get_config()
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {cell_timeout}
c.Execute.kernel_name = {kernel!r}
# After a cell's reply, how long to wait for its last output: nbclient's 4 s fails busy machines, and a notebook
# whose output is late would lose the rest of its cells.
c.Execute.iopub_timeout = 60
c.LimitOutput.max_lines = {max_output_lines}
# The solution version is shown to students after the deadline: no hidden tests in it, no need to run it.
c.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput, ClearMarkScheme, ClearHiddenTests]
# Hidden tests are judged outside the kernel, a kernel that dies costs only the rest of its notebook, and output is
# cut per cell (grader/preprocessors.py).
import sys
sys.path.insert(0, {repo!r})
from grader.preprocessors import HideHiddenTests, JudgeHiddenTests, LimitOutputBytes, RecordNotRun
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute, LimitOutput, SaveAutoGrades
_steps = [JudgeHiddenTests if step is Execute else step
          for step in Autograde.autograde_preprocessors.make_dynamic_default()]
_steps.insert(_steps.index(LimitOutput) + 1, LimitOutputBytes)
_steps.insert(_steps.index(SaveAutoGrades) + 1, RecordNotRun)
c.Autograde.autograde_preprocessors = _steps
# Test cells marked as needing CUDA run only where this runner has a GPU
c.JudgeHiddenTests.device = {device!r}
c.LimitOutputBytes.max_kb = {max_output_kb}
# LMS downloads (`python -m grader collect`, or `nbgrader zip_collect`): names read as settings.ini [collect] says
c.ZipCollectApp.extractor_plugin = "grader.collect.DatedExtractor"
c.ZipCollectApp.collector_plugin = "grader.collect.LmsCollector"
c.FileNameCollectorPlugin.named_regexp = {collect_pattern!r}
c.DatedExtractor.timezone = {collect_timezone!r}
c.LmsCollector.timezone = {collect_timezone!r}
# Written answers hold their rubric between mark-scheme delimiters (grader/formgrader.py): the solution version drops it
c.ClearMarkScheme.enforce_metadata = False
# Feedback pages typeset math with a MathJax copied next to them (no CDN): grader/templates/feedback/ replaces
# nbconvert's MathJax macro there; nbgrader's own templates stay on the path.
c.HTMLExporter.extra_template_basedirs = {template_dirs!r}
c.HTMLExporter.mathjax_url = {mathjax_url!r}
# Feedback goes to students: no hidden test and no traceback that quotes one. A test not run (no GPU) or an answer
# still to grade by hand says so, not 0; totals are "graded so far".
from grader.preprocessors import GetGradesSoFar
c.GenerateFeedback.preprocessors = [GetGradesSoFar, HideHiddenTests, CSSHTMLHeaderPreprocessor]
c.GenerateFeedback.HTMLExporter.extra_template_basedirs = {template_dirs!r}
c.GenerateFeedback.HTMLExporter.template_file = "so_far.html.j2"  # grader/templates/feedback/, extends nbgrader's
# Each exercise stub of the student version names its exercise and notebook when it runs (grader/preprocessors.py).
from grader.preprocessors import NameStubs
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions
_steps = GenerateAssignment.preprocessors.make_dynamic_default()
_steps.insert(_steps.index(ClearSolutions) + 1, NameStubs)
c.GenerateAssignment.preprocessors = _steps
"""

def student_dependencies() -> list:
    "What the student package needs: the library's dependencies and the notebook tools (nbdev, nbgrader, JupyterLab)."
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tools = [d for d in project["optional-dependencies"]["dev"] if re.match(r"(nbdev|nbgrader|nbformat|ipykernel)\b", d)]
    return [*project["dependencies"], *tools, "jupyterlab>=4"]


# The student edition's project (grader/edition.py adds the package itself); nbgrader's release holds it too.
STUDENT_PYPROJECT = """\
# The {package} package: your exercises (nbdev-export writes them here from the notebooks) and the course helpers.
# `pip install -e .` in this folder installs it with everything the notebooks need.
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{package}"
version = "{version}"
description = "{course_id} {assignment_id}, student edition"
requires-python = ">=3.10"
dependencies = {dependencies}

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
{package} = ["sample_data/*.tar.gz"]

[tool.nbdev]
lib_path = "{package}"
nbs_path = "."
recursive = false
# nbgrader keeps its cell metadata under "nbgrader": nbdev-clean must not strip it
allowed_cell_metadata_keys = ["nbgrader"]
allowed_metadata_keys = []
jupyter_hooks = false
"""

STUDENT_README = """\
# {course_id} {assignment_id}: student edition

This folder holds the homework's {n_notebooks} notebooks, `{first}` to `{last}`, the files their tests read
(`tests/assets/`) and the `{package}` package: the course's helpers (CIFAR-10 loading with a 4,000-image sample
built in, plots, the gradient check) and, once you export them, your own solutions. It holds no solutions.

## Install, once

With Python 3.10 or newer, in this folder:

```bash
python -m venv .venv && . .venv/bin/activate    # or a conda environment
pip install -e .
python -m {package}.jupyter_setup
```

This installs `{package}` (editable, so it follows your exports) with PyTorch, JupyterLab, nbdev and nbgrader.
The last line sets up JupyterLab in this environment: nbgrader's Validate button on each notebook, without nbgrader's
tools for instructors (formgrader, Create Assignment, the course and assignment lists).
You don't need the course's reference library `dlcourse`: it ships the solutions, and importing it into an exercise
scores 0.

## Work

1. `jupyter lab`, then open the notebooks in order, starting with `{first}`.
2. Fill in every `# YOUR CODE HERE` (delete the `raise NotImplementedError(...)` under it) and write your answers in
   the cells that say `YOUR ANSWER HERE`.
3. Run the test cell under each exercise. The grader runs these tests and more: other shapes, dtypes and edge cases.
4. When a notebook is done, run `nbdev-export` in this folder. It writes your code into `{package}`
   (`{package}.layers`, `{package}.optimizers`, ...), which the later notebooks import: Part 2 trains your Part 1
   layers, Part 4 classifies with your Part 3 classifier. Until you export, they get the stubs, whose
   `NotImplementedError` names the exercise and its notebook, e.g. "`CNN._make_feature_extractor` is not written
   yet: fill in its `# YOUR CODE HERE` in part4_cnn.ipynb, then run nbdev-export". (`nbdev-clean` tidies the
   notebooks and keeps nbgrader's cell metadata.)

The notebooks train on the built-in CIFAR-10 sample. With a full copy, set `DLCOURSE_CIFAR10` to it (a torchvision
data folder, or an image-folder export `train/<class>/*.jpg`, `test/<class>/*.jpg`, as a folder or a `.tar.gz`).

Part 3's explorers (sliders for the threshold, the depth and the width) are widgets: open the notebooks in
JupyterLab to use them. Elsewhere they draw a static figure.

## Self-check before submitting

```bash
python -m {package}.selfcheck  # every notebook, run from the top: several minutes
python -m {package}.selfcheck {first}  # one notebook
python -m {package}.selfcheck --no-run  # only what is left to write, in seconds
```

For each notebook it lists what is left: exercises still raising `NotImplementedError`, answers still to write,
modules of `{package}` out of step with the notebook (run `nbdev-export`), and the test cells that fail when
`nbgrader validate` runs the notebook from the top as the grader does (a fresh kernel, cells in order, at most
{cell_timeout} s a cell). It ends with "ready to submit" (exit status 0) or the number of things left.

## Submit

Hand in the {n_notebooks} notebooks with their names unchanged, where your course collects submissions (its
upload page, or nbgrader's exchange where the course runs one); the grader files them under
`submitted/<your id>/{assignment_id}/`. Don't delete, split or retype the cells that were given: the grader
restores them from its own copy and runs each notebook from the top, in a sandbox, with your exported code as
`{package}` (the grader exports it from the notebooks you hand in) and with hidden tests. The hidden tests decide the
points, and they test each part on its own: a bug in an earlier part costs points in that part only. The `{package}`
folder is not handed in.
"""


def student_fields(s: Settings) -> dict:
    "What the student README and pyproject.toml templates are filled with."
    return dict(package=s.student_package, course_id=s.course_id, assignment_id=s.assignment_id,
                version=dlcourse.__version__, dependencies=json.dumps(student_dependencies()),
                n_notebooks=len(s.parts), first=f"{s.parts[0]}.ipynb", last=f"{s.parts[-1]}.ipynb",
                cell_timeout=s.cell_timeout)


def tools_path() -> str:
    "PATH with this environment's scripts first: nbgrader runs its helpers (alembic) by name."
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


class Course:
    "The nbgrader course directory and the operations an instructor runs on it."

    def __init__(self, settings: Settings, root: Path = COURSE_DIR):
        self.settings, self.root = settings, Path(root)
        aid = settings.assignment_id
        self.source = self.root / "source" / aid
        self.release = self.root / "release" / aid
        self.solution = self.root / "solution" / aid
        self.gradebook_path = self.root / "gradebook.db"

    def gradebook(self) -> Gradebook:
        "nbgrader's gradebook of the course, to use as a context manager."
        return Gradebook(f"sqlite:///{self.gradebook_path}", course_id=self.settings.course_id)

    def submitted(self, student: str) -> Path:
        return self.root / "submitted" / student / self.settings.assignment_id

    def submitted_students(self) -> list:
        "The students with a submission of the course's assignment, sorted."
        folder = self.root / "submitted"
        return sorted(p.name for p in folder.iterdir() if (p / self.settings.assignment_id).is_dir()) \
            if folder.exists() else []

    def nbgrader(self, *args, timeout=None, env=None):
        "Run an nbgrader command in the course directory (with extra `env`); raise with its log if it fails."
        cmd = [sys.executable, "-m", "nbgrader", *args]
        env = {**os.environ, **(env or {}), "PATH": tools_path()}
        res = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout, env=env)
        if res.returncode != 0:
            raise CourseError(f"`nbgrader {' '.join(args)}` failed:\n{res.stdout}{res.stderr}")
        return res

    def autograde_here(self, student: str, env: dict = None, config: dict = None):
        """`nbgrader autograde` of one submission in this process, through nbgrader's API: the error text, or None.

        nbgrader is imported once per process rather than once per submission. The kernels it starts inherit `env`,
        set in `os.environ` while it runs, so a process grades one submission at a time. `config`: nbgrader
        settings over nbgrader_config.py, e.g. `{"CourseDirectory": {"db_url": ...}}`."""
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config, PyFileConfigLoader
        cfg = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        cfg.merge(Config(config or {}))
        env = {**(env or {}), "PATH": tools_path()}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
            result = api.autograde(self.settings.assignment_id, student, force=True, create=True)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        if result["success"]:
            return None
        return f"`nbgrader autograde` of {student} failed:\n{result.get('log', '')}{result.get('error', '')}"

    def write_config(self):
        "Write `nbgrader_config.py` from the settings."
        s = self.settings
        (self.root / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(
            course_id=s.course_id, root=str(self.root), cell_timeout=s.cell_timeout,
            kernel=s.kernel, max_output_lines=s.max_output_lines, repo=str(ROOT), max_output_kb=s.max_output_kb, device=s.device,
            collect_pattern=s.collect_pattern, collect_timezone=s.collect_timezone,
            template_dirs=[str(TEMPLATES_DIR), str(NBGRADER_TEMPLATES)], mathjax_url=MATHJAX_URL))

    def build_source(self):
        "Copy the chapter notebooks into nbgrader's source folder, with the files a student needs."
        s = self.settings
        shutil.rmtree(self.source, ignore_errors=True)
        self.source.mkdir(parents=True)
        for part in s.parts:
            shutil.copy(NBS_DIR / f"{part}.ipynb", self.source)
        assets = self.source / "tests" / "assets"  # expected tensors some tests load
        assets.mkdir(parents=True)
        for tensor in sorted(ASSETS_DIR.glob("*.pt")):
            shutil.copy(tensor, assets)
        fmt = student_fields(s)
        (self.source / "pyproject.toml").write_text(STUDENT_PYPROJECT.format(**fmt))
        (self.source / "README.md").write_text(STUDENT_README.format(**fmt))

    def student_version(self) -> Path:
        "Build `release/`: stubs instead of solutions, no hidden tests; checked before it is returned."
        self.write_config()
        self.build_source()
        self.nbgrader("generate_assignment", self.settings.assignment_id, "--force")
        check_no_leaks(self.source, self.release)
        return self.release

    def solution_version(self) -> Path:
        "Build `solution/`: the reference solutions without the hidden tests."
        if not self.release.exists():
            self.student_version()
        self.nbgrader("generate_solution", self.settings.assignment_id, "--force")
        check_no_leaks(self.source, self.solution, solutions_allowed=True)
        return self.solution

    def remove_students(self, students):
        "Forget these students: their gradebook entries and their submitted and autograded folders."
        if self.gradebook_path.exists():
            with self.gradebook() as gb:
                known = {s.id for s in gb.students}
                for student in set(students) & known:
                    gb.remove_student(student)
        for student in students:
            shutil.rmtree(self.root / "submitted" / student, ignore_errors=True)
            shutil.rmtree(self.root / "autograded" / student, ignore_errors=True)

    def feedback(self) -> Path:
        "nbgrader's HTML feedback for every autograded submission, in `feedback/`: points, messages, visible tests."
        self.nbgrader("generate_feedback", self.settings.assignment_id, "--force")
        folder = self.root / "feedback"
        ship_mathjax(sorted(folder.glob(f"*/{self.settings.assignment_id}")))
        return folder

    def export_grades(self) -> Path:
        "nbgrader's own CSV export of the gradebook, as `grader/grades.csv` (replaced whole, never half-written)."
        out, tmp = self.root / "grades.csv", self.root / f".grades.csv.{os.getpid()}.tmp"
        self.nbgrader("export", "--to", str(tmp))
        os.replace(tmp, out)
        return out


def mathjax_dir() -> Path:
    "MathJax 3 as the sphinx-mathjax-offline wheel ships it: what feedback and formgrader pages load (no CDN)."
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None:
        raise CourseError("sphinx-mathjax-offline is not installed: it ships the MathJax of the feedback and "
                          "formgrader pages (`pip install -e '.[dev]'`)")
    return Path(spec.origin).parent / "static" / "mathjax"


def ship_mathjax(folders):
    "Put the MathJax that feedback pages load into each folder (`MATHJAX_URL`): a student's folder is self-contained."
    src, copied = mathjax_dir() / MATHJAX_FILE, None
    for folder in folders:
        dest = Path(folder) / MATHJAX_URL
        dest.parent.mkdir(exist_ok=True)
        dest.unlink(missing_ok=True)
        if copied:
            try:  # one copy on disk, however many students
                os.link(copied, dest)
                continue
            except OSError:  # another file system
                pass
        shutil.copyfile(src, dest)
        copied = copied or dest


def cells_by_id(nb):
    "grade_id -> cell, for the cells nbgrader tracks."
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def check_no_leaks(source_dir: Path, built_dir: Path, solutions_allowed=False):
    """Raise if a built notebook shows a hidden test or (unless allowed) reference solution code.

    Compares each built cell with its source cell: no solution line and no line that only a
    hidden-test region holds may appear in it.
    """
    problems = []
    for src_path in sorted(Path(source_dir).glob("*.ipynb")):
        built_path = Path(built_dir) / src_path.name
        if not built_path.exists():
            problems.append(f"{built_path} was not built")
            continue
        built = cells_by_id(nbformat.read(built_path, as_version=4))
        for gid, cell in cells_by_id(nbformat.read(src_path, as_version=4)).items():
            out = built.get(gid)
            if out is None:
                continue
            out_lines = {line.strip() for line in out.source.splitlines()}
            visible = {line.strip() for line in remove_hidden_tests(cell.source).splitlines()}
            hidden = {line.strip() for line in cell.source.splitlines()} - visible
            leaked = {line for line in hidden & out_lines if line}
            if not solutions_allowed:
                secret = {line.strip() for line in solution_lines(cell.source)}
                secret -= {line.strip() for line in given_lines(cell.source)}  # "else:" may be both
                leaked |= secret & out_lines
            if is_written_answer(cell):  # its reference answer (allowed in the solution version), and its rubric
                secret_text = split_rubric(cell.source)[1] if solutions_allowed else cell.source
                leaked |= {line.strip() for line in secret_text.splitlines() if len(line.strip()) >= 20} & out_lines
            markers = (HIDDEN_BEGIN, HIDDEN_END, MARK_SCHEME_BEGIN) + (() if solutions_allowed else (SOLUTION_BEGIN,))
            if any(m in out.source for m in markers):
                leaked.add("a grading marker")
            if leaked:
                problems.append(f"{built_path.name} cell {gid!r} shows: {sorted(leaked)[:3]}")
    if problems:
        raise CourseError("The built notebooks leak what students must not see:\n  " + "\n  ".join(problems))

