"""Check your homework before you submit it: run `python -m {package}.selfcheck` in the folder with the notebooks.

For each notebook it says what is left: exercises still to write (a stub's `raise NotImplementedError(...)` left in),
written answers still to give (`YOUR ANSWER HERE`), a package out of step with the notebook (run `nbdev-export`),
and the test cells that fail when `nbgrader validate` runs the notebook from the top with its visible tests.
The grader runs more tests than these: passing here is necessary, not sufficient.
Exit status: 0 when nothing is left, 1 otherwise.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from . import _course
from .plot import STATIC_PLOTS_VAR

# The stub of an exercise: nbgrader's, or with the message that names the exercise (grader/preprocessors.py)
STUB = re.compile(r'^\s*raise NotImplementedError\(("[^"\n]*is not written yet[^"\n]*")?\)\s*$', re.MULTILINE)
ANSWER = "YOUR ANSWER HERE"


def _nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


def unfinished(nb):
    "(exercises, answers) still as the student version gave them, by grade id."
    exercises, answers = [], []
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if not meta.get("solution"):
            continue
        if cell.cell_type == "code" and STUB.search(cell.source):
            exercises.append(meta["grade_id"])
        elif cell.cell_type == "markdown" and ANSWER in cell.source:
            answers.append(meta["grade_id"])
    return exercises, answers


EXPORT_TO = re.compile(r"^#\|[ \t]*(?:default_exp|exports?)[ \t]+([\w.]+)[ \t]*$", re.MULTILINE)


def modules_of(nb) -> set:
    "The modules a notebook writes to: its `default_exp`, and any `#| export module` of a cell (Part 5 adds to two)."
    return {f"{m.replace('.', '/')}.py" for cell in nb.cells if cell.cell_type == "code"
            for m in EXPORT_TO.findall(cell.source)}


def export_now(folder: Path, tmp: Path) -> Path:
    """What `nbdev-export` would make of every notebook in `folder` now, written under `tmp`; returns the package's
    folder there. (One notebook may add to another's module, so they are exported together, in name order.)"""
    from nbdev.config import get_config
    from nbdev.export import nb_export
    lib = get_config(folder).lib_path.relative_to(folder)
    shutil.copy(folder / "pyproject.toml", tmp)  # nbdev reads the package's name from it
    notebooks = sorted(folder.glob("*.ipynb"))
    for nb in notebooks:
        shutil.copy(nb, tmp)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        for nb in notebooks:
            nb_export(nb.name)
    finally:
        os.chdir(cwd)
    return Path(tmp) / lib


def stale_modules(folder: Path, nb, exported: Path):
    "The package's modules, among those `nb` writes to, that differ from their export now (`exported`)."
    lib = exported.name
    return [f"{lib}/{module}" for module in sorted(modules_of(nb))
            if (exported / module).exists() and (not (folder / lib / module).exists()
                                                 or (folder / lib / module).read_text() != (exported / module).read_text())]


def _last_line(error: str) -> str:
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in error.strip().splitlines()]
    return next((line for line in reversed(lines) if line), "failed").rstrip(":")[:240]


def changed_locked_cells(nb):
    "Grade ids of the locked cells whose text differs from what was given (nbgrader's checksum, as validate does)."
    from nbgrader.utils import compute_checksum, is_locked
    return [_nbgrader(c)["grade_id"] for c in nb.cells if is_locked(c) and "checksum" in _nbgrader(c)
            and compute_checksum(c) != _nbgrader(c)["checksum"]]


def failing_cells(notebook: Path, timeout: int):
    """nbgrader validate: run the notebook from the top. {label: error} of the test cells that fail, and of the other
    cells that raise (a test that fails because a cell above it did is easier to fix from that cell)."""
    from nbgrader.validator import Validator
    from traitlets.config import Config
    config = Config()
    config.Execute.timeout = timeout
    config.Execute.iopub_timeout = 60  # a busy machine may take more than nbclient's 4 s to deliver a cell's output
    config.KernelManager.transport = "ipc"  # a local socket file, not TCP on localhost
    config.Validator.ignore_checksums = True  # changed cells are reported apart, and the tests still run
    config.Validator.validate_all = True
    results = Validator(config=config).validate(str(notebook))
    cells = nbformat.read(notebook, as_version=4).cells
    labels = {}
    for i, cell in enumerate(cells):
        gid = _nbgrader(cell).get("grade_id", f"number {i + 1}")
        labels[cell.source.strip()] = (f"test {gid}" if _nbgrader(cell).get("grade") else f"cell {gid}",
                                       cell.cell_type)
    failed = {}
    for r in results.get("failed", []):
        label, cell_type = labels.get(r["source"], (f"cell {r['source'][:30]!r}", "code"))
        error = _last_line(r.get("raw_error", ""))
        # written answers are graded by hand (`unfinished` reports those still to write); a cell that is not a
        # test only counts when it raised (a progress bar on stderr is fine there)
        if cell_type == "code" and (label.startswith("test ") or re.match(r"\w*(Error|Exception|Interrupt)\b", error)):
            failed[label] = error
    return failed


def grading_like_environment(tmp: Path):
    "Run kernels as the grader does: static figures, and warnings printed to stdout instead of stderr."
    startup = tmp / "profile_default" / "startup" / "00-warnings-to-stdout.py"
    startup.parent.mkdir(parents=True)
    startup.write_text(_course.WARNINGS_TO_STDOUT)
    os.environ["IPYTHONDIR"] = str(tmp)
    os.environ[STATIC_PLOTS_VAR] = "1"


def notebook_problems(folder: Path, path: Path, timeout: int, run: bool, out, exported: Path):
    "What is left in one notebook, one line each."
    nb = nbformat.read(path, as_version=4)
    exercises, answers = unfinished(nb)
    problems = []
    if exercises:
        problems.append(f"exercises to write: {', '.join(exercises)}")
    if answers:
        problems.append(f"answers to write: {', '.join(answers)}")
    stale = stale_modules(folder, nb, exported)
    if stale:
        problems.append(f"{', '.join(stale)} out of step with the notebook: run `nbdev-export`")
    changed = changed_locked_cells(nb)
    if changed:
        problems.append(f"given cells changed (the grader puts them back as they were): {', '.join(changed)}")
    if run:
        print(f"{path.name}: running it with nbgrader validate ...", file=out, flush=True)
        problems += [f"{label} fails: {error}" for label, error in failing_cells(path, timeout).items()]
    return problems


def check(folder: Path, notebooks, timeout: int, run=True, out=sys.stdout):
    "Print what is left in each notebook; return how many things are left."
    left = 0
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as export_dir:
        if run:
            grading_like_environment(Path(tmp))
        exported = export_now(folder, Path(export_dir))
        for name in notebooks:
            path = folder / name
            if not path.exists():
                print(f"{name}: missing from {folder}", file=out)
                left += 1
                continue
            start = time.time()
            try:
                problems = notebook_problems(folder, path, timeout, run, out, exported)
            except Exception as e:  # a notebook that cannot be read or run is something left too
                problems = [f"could not check it: {type(e).__name__}: {e}"]
            left += len(problems)
            verdict = "done" if not problems else f"{len(problems)} left"
            print(f"{name}: {verdict} ({time.time() - start:.0f} s)", file=out)
            for problem in problems:
                print(f"    - {problem}", file=out)
    return left


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {_course.PACKAGE}.selfcheck",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help=f"notebooks to check (default: all of {_course.ASSIGNMENT_ID})")
    parser.add_argument("--folder", type=Path, default=Path.cwd(), help="the folder with the notebooks (default: here)")
    parser.add_argument("--no-run", action="store_true", help="only the quick checks, without running the notebooks")
    parser.add_argument("--timeout", type=int, default=_course.CELL_TIMEOUT,
                        help="seconds a cell may run, as when graded (default: %(default)s)")
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    notebooks = [Path(n).name for n in args.notebooks] or list(_course.NOTEBOOKS)
    if not any((folder / n).exists() for n in notebooks):
        parser.error(f"none of {notebooks} is in {folder}: run this in the folder with the notebooks, or pass --folder")
    print(f"Self-check of {_course.ASSIGNMENT_ID} in {folder}", flush=True)
    left = check(folder, notebooks, args.timeout, run=not args.no_run)
    if left:
        print(f"\n{left} thing(s) left: not ready to submit yet.")
        return 1
    if args.no_run:
        print("\nNothing left to write. The notebooks were not run: without --no-run the self-check runs their tests.")
    else:
        print("\nEverything done and every visible test passes: ready to submit (the grader runs more tests).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
