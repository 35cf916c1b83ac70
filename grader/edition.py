"""The student edition: one archive a student unpacks, installs with one `pip install` and works in.

`build_student_package` lays out one folder, the student package's project:

* the release notebooks (nbgrader's student version), with `dlcourse.<module>` read as `<package>.<module>`, so
  that a notebook imports the course helpers and the earlier parts from the student's own package;
* the files they read (`tests/assets/`), a README and a `pyproject.toml`;
* the package (`hw2`, settings.ini's `student_package`): the exercise modules as nbdev exports them from those
  notebooks, exercises as stubs that raise NotImplementedError; the course helpers (every library module that no
  part exports: data loading with the embedded CIFAR-10 sample, plots, the gradient check, the test helpers) as
  they are; `selfcheck`, the check before submitting; and `jupyter_setup`, which turns nbgrader's instructor tools
  off in the student's JupyterLab (its Validate button stays).

Nothing in it holds reference exercise code: the build refuses to finish when any file does. A grading sandbox,
which must not hold the reference either, installs this same folder: one build for both. `student_edition` packs
it into `dist/<assignment_id>-student.tar.gz`.

When the instructor autogrades a notebook of the edition, nbgrader restores every locked cell from the gradebook,
so the graded imports are the instructor's (`dlcourse.<module>`), as for a notebook of the release folder.
"""
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import nbformat
from nbgrader.utils import compute_checksum, is_locked

import dlcourse
from dlcourse.authoring import given_lines, remove_hidden_tests, solution_lines
from grader.course import NBS_DIR, ROOT, STUDENT_PYPROJECT, Course, CourseError, student_fields
from grader.judging import WARNINGS_TO_STDOUT

LIBRARY = ROOT / "dlcourse"
SELFCHECK = Path(__file__).resolve().parent / "student" / "selfcheck.py"
JUPYTER_SETUP = SELFCHECK.with_name("jupyter_setup.py")
REFERENCE_PACKAGE = "dlcourse"
# A module reference such as `dlcourse.layers` (not `DLCOURSE_CIFAR10`, not `~/.cache/dlcourse`)
_MODULE_REF = re.compile(rf"\b{REFERENCE_PACKAGE}\.(?=[A-Za-z_])")
_IMPORT = re.compile(rf"^\s*(from|import)\s+{REFERENCE_PACKAGE}\b", re.MULTILINE)


def edition_notebook(nb, package: str):
    """The release notebook `nb` as the edition ships it: `dlcourse.<module>` becomes `<package>.<module>`.

    A changed cell gets nbgrader's checksum of its new source, so `nbgrader validate` accepts it; only locked
    cells may import, since autograding restores those from the gradebook (an unlocked cell keeps what the
    student submitted, and the grader would not find `<package>` there)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        new = _MODULE_REF.sub(f"{package}.", cell.source)
        if new == cell.source:
            continue
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and _IMPORT.search(cell.source) and not is_locked(cell):
            raise CourseError(f"cell {meta.get('grade_id')!r} imports {REFERENCE_PACKAGE} but students may edit it: "
                              "move the import into a locked cell")
        cell.source = new
        if "checksum" in meta:
            meta["checksum"] = compute_checksum(cell)
    return nb


def exported_modules(notebooks) -> dict:
    "module name -> notebook name, for the notebooks' `#| default_exp`."
    modules = {}
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            m = re.search(r"^#\|\s*default_exp\s+(\S+)", cell.source, re.MULTILINE)
            if cell.cell_type == "code" and m:
                modules[m.group(1)] = path.stem
    return modules


def exercise_notebooks() -> list:
    "The chapter notebooks with exercises (nbgrader solution cells), whether or not settings.ini's parts list them."
    return [path for path in sorted(NBS_DIR.glob("*.ipynb"))
            if any(c.metadata.get("nbgrader", {}).get("solution") for c in nbformat.read(path, as_version=4).cells)]


def helper_modules() -> list:
    "The library modules no exercise notebook exports: the course's helpers, given to students as they are."
    exercises = exported_modules(exercise_notebooks())
    return sorted(p.stem for p in LIBRARY.glob("*.py") if not p.stem.startswith("_") and p.stem not in exercises)


def reference_lines(notebooks, solutions=True, hidden=True) -> set:
    """The lines only the reference holds, stripped: the solution lines and the hidden-test lines of these source
    notebooks, less any line also given to students (in the notebooks or the course's helper modules); blank lines,
    comments and bare keywords left out."""
    secret, given = set(), set()
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            visible = remove_hidden_tests(cell.source)
            if solutions:
                secret |= {line.strip() for line in solution_lines(visible)}
            if hidden:
                secret |= {line.strip() for line in cell.source.splitlines()} - \
                    {line.strip() for line in visible.splitlines()}
            given |= {line.strip() for line in given_lines(visible)}
    for name in helper_modules():  # the course's helpers are given to students as they are
        given |= {line.strip() for line in (LIBRARY / f"{name}.py").read_text().splitlines()}
    trivial = re.compile(r"(break|continue|pass|return|return \w+|else:|try:|finally:|yield)$")  # `return x`: no secret
    return {line for line in secret - given if line and not line.startswith("#") and not trivial.match(line)}


def find_reference_code(folder: Path, secret: set) -> list:
    "`file: line` for each reference line found in a file under `folder` (read as text, binary files included)."
    found = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        lines = {line.strip() for line in text.splitlines()}
        # notebooks keep their source as JSON strings: compare the cells' lines too
        if path.suffix == ".ipynb":
            lines |= {line.strip() for cell in nbformat.reads(text, as_version=4).cells
                      for line in cell.source.splitlines()}
        found += [f"{path.relative_to(folder)}: {line}" for line in sorted(secret & lines)]
    return found


def _helper_source(name: str, package: str) -> str:
    "A helper module of the library as the student package holds it."
    text = (LIBRARY / f"{name}.py").read_text()
    text = re.sub(r"^# AUTOGENERATED!.*$", f"# The course's helper `{REFERENCE_PACKAGE}.{name}` "
                  f"({REFERENCE_PACKAGE} {dlcourse.__version__}): given, not an exercise.", text, count=1,
                  flags=re.MULTILINE)
    # its package data (the CIFAR-10 sample) is the student package's
    return text.replace(f'files("{REFERENCE_PACKAGE}")', f'files("{package}")')


def course_constants(course: Course) -> str:
    "`<package>/_course.py`: what the self-check needs to know of the course."
    s = course.settings
    return (f'"Written by `python -m grader student-edition` from settings.ini; the self-check reads it."\n'
            f"COURSE_ID = {s.course_id!r}\nASSIGNMENT_ID = {s.assignment_id!r}\nPACKAGE = {s.student_package!r}\n"
            f"NOTEBOOKS = {tuple(f'{p}.ipynb' for p in s.parts)!r}\nCELL_TIMEOUT = {s.cell_timeout!r}\n"
            f"# the grading kernels' start-up file: warnings go to stdout (nbgrader gives 0 to a cell that writes to stderr)\n"
            f"WARNINGS_TO_STDOUT = {WARNINGS_TO_STDOUT!r}\n")


def build_student_package(course: Course, dest: Path, package: str | None = None) -> Path:
    """Lay out the student package's project in `dest` (replaced): notebooks, assets, README, pyproject.toml and
    the package (`package`, by default settings.ini's `student_package`); then check that no file holds reference
    code. Builds the student version first when needed."""
    s, package = course.settings, package or course.settings.student_package
    if not all((course.release / f"{part}.ipynb").exists() for part in s.parts):
        course.student_version()
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(course.release, dest, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    if package != s.student_package:  # the release's project is the student package's: name it `package`
        shutil.rmtree(dest / s.student_package, ignore_errors=True)
        (dest / "pyproject.toml").write_text(STUDENT_PYPROJECT.format(**{**student_fields(s), "package": package}))
    for part in s.parts:
        nb = nbformat.read(course.release / f"{part}.ipynb", as_version=4)
        nbformat.write(edition_notebook(nb, package), dest / f"{part}.ipynb")

    lib = dest / package
    lib.mkdir()
    (lib / "__init__.py").write_text(f'__version__ = "{dlcourse.__version__}"\n')  # nbdev-export adds the docstring
    for name in helper_modules():
        (lib / f"{name}.py").write_text(_helper_source(name, package))
    shutil.copytree(LIBRARY / "sample_data", lib / "sample_data")
    (lib / "selfcheck.py").write_text(SELFCHECK.read_text().replace("{package}", package))
    (lib / "jupyter_setup.py").write_text(JUPYTER_SETUP.read_text().replace("{package}", package))
    (lib / "_course.py").write_text(course_constants(course))
    nbdev_export = Path(sys.executable).with_name("nbdev-export")
    res = subprocess.run([str(nbdev_export)], cwd=dest, capture_output=True, text=True)
    if res.returncode != 0:
        raise CourseError(f"nbdev-export of the student notebooks failed:\n{res.stdout}{res.stderr}")

    missing = sorted({m for part in s.parts for m in re.findall(rf"\b{package}\.(\w+)", (dest / f"{part}.ipynb").read_text())
                      if not (lib / f"{m}.py").exists()})
    if missing:
        raise CourseError(f"the notebooks import {[f'{package}.{m}' for m in missing]}, which the student package lacks")
    leaks = find_reference_code(dest, reference_lines(sorted(course.source.glob("*.ipynb"))))
    if leaks:
        raise CourseError("the student edition holds reference code:\n  " + "\n  ".join(leaks[:10]))
    return dest


def student_edition(course: Course, dist_dir: Path = ROOT / "dist") -> Path:
    "`<dist_dir>/<assignment_id>-student.tar.gz`: the student package's folder, `<assignment_id>-student/`."
    name = f"{course.settings.assignment_id}-student"
    dist_dir = Path(dist_dir)
    folder = build_student_package(course, dist_dir / name)
    archive = dist_dir / f"{name}.tar.gz"
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(folder, arcname=name, filter=lambda info: None if "__pycache__" in info.name else info)
    tmp.replace(archive)
    shutil.rmtree(folder)
    return archive


def grading_package(template: Path, submission: Path, dest: Path, package: str = REFERENCE_PACKAGE) -> Path:
    """The package a sandboxed grading kernel imports as `package`: the `template` (a `build_student_package`
    folder for `package`: helpers real, exercises stubs) with the exercises the `submission`'s notebooks export, so
    that a later part runs on the student's own earlier work, as in the student edition. No code of the submission
    runs here: nbdev-export only copies cells. A module the submission breaks (it does not compile) stays a stub."""
    dest = Path(dest)
    shutil.copytree(template, dest)
    for nb in Path(submission).glob("*.ipynb"):
        if (dest / nb.name).exists():
            shutil.copy(nb, dest / nb.name)
    nbdev_export = Path(sys.executable).with_name("nbdev-export")
    subprocess.run([str(nbdev_export)], cwd=dest, capture_output=True, text=True, timeout=120)
    for module in (dest / package).glob("*.py"):
        try:
            compile(module.read_text(), str(module), "exec")
        except (SyntaxError, ValueError, UnicodeDecodeError):
            shutil.copy(Path(template) / package / module.name, module)
    return dest / package
