"""Code written to the course's own skeleton scores every main cell, and `grader import` reads the course's format.

tests/course_format/reference/ is a complete solution in the course's layout (`hw2/*.py`, written here from the
course's skeleton as described in its API notes). Its definitions are placed in our notebooks' solution cells as
`python -m grader import` places them, and the notebooks' own test cells, hidden tests included, run on them
(tests/bank_runner.py): every cell that carries the course's points passes; only the project's additions (`extra_`
cells) may fail.
"""
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from dlcourse.authoring import SOLUTION_BEGIN, SOLUTION_END
from grader.course import load_settings
from grader.course_import import place, read_submission, submissions_in
from grader.report import is_extra

from bank_runner import load_cells, run_notebook

pytestmark = pytest.mark.slow  # runs every notebook's test cells on the course's own format

REFERENCE = Path(__file__).resolve().parent / "course_format" / "reference"
ROOT = Path(__file__).resolve().parents[1]
# Part 5's cells train on CIFAR-10 for minutes: tests/test_experiments.py and the pipeline test cover them
PARTS = [p for p in load_settings().parts if p != "part5_experiments"]


def test_the_reference_passes_the_course_s_own_checks():
    "The course's own conditions (its expected tensors, its notebooks' asserts), independent of our hidden tests."
    res = subprocess.run([sys.executable, str(REFERENCE.parent / "check_reference.py")], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def reference_modules() -> dict:
    return read_submission(REFERENCE)


def student_version(part):
    "The notebook as students get it: each solution region replaced by `raise NotImplementedError()`."
    nb = nbformat.read(ROOT / "nbs" / f"{part}.ipynb", as_version=4)
    for cell in nb.cells:
        lines, inside = [], False
        for line in cell.source.splitlines():
            if line.strip() == SOLUTION_BEGIN:
                inside = True
                lines.append(line[:len(line) - len(line.lstrip())] + "raise NotImplementedError()")
            elif line.strip() == SOLUTION_END:
                inside = False
            elif not inside:
                lines.append(line)
        cell.source = "\n".join(lines)
    return nb


def main_cell_failures(modules: dict, parts=PARTS):
    "The course's test cells (not `extra_`) that fail with `modules` placed in the notebooks, and the import report."
    sources, report = place(modules, {p: student_version(p) for p in load_settings().parts})
    failures = {}
    for part in parts:
        reference = {gid: source for gid, _, _, source in load_cells(part)}
        edits = [(gid, reference[gid], new) for gid, new in sources.get(part, {}).items() if gid in reference]
        run = run_notebook(part, edits)
        failures.update({f"{part}/{gid}": why for gid, why in run.failures.items() if not is_extra(gid)})
    return failures, report


def test_the_course_faithful_reference_scores_every_main_cell():
    failures, report = main_cell_failures(reference_modules())
    assert failures == {}, failures
    assert report.problems == [], report.problems
    exercises = {f"{part}/{gid}" for part in PARTS for gid, is_test, is_solution, _ in load_cells(part)
                 if is_solution and not is_test}
    assert exercises <= set(report.placed), f"exercises the course's solution did not reach: {exercises - set(report.placed)}"


@pytest.mark.parametrize("module, old, new, cell", [
    ("layers", "self.dw += torch.mm(dout.t(), x)", "self.dw = torch.mm(dout.t(), x)", "part1_backprop/test_linear"),
    ("optimizers", "v.mul_(self.momentum).add_(grad, alpha=-self.learn_rate)",
     "v.mul_(self.momentum).add_(grad, alpha=self.learn_rate)", "part2_optimizers/test_momentum_sgd"),
])
def test_a_bug_in_course_format_code_still_loses_its_points(module, old, new, cell):
    modules = reference_modules()
    assert modules[module].count(old) == 1, f"the reference's hw2/{module}.py no longer holds {old!r}"
    modules[module] = modules[module].replace(old, new)
    failures, _ = main_cell_failures(modules, parts=[cell.split("/")[0]])
    assert cell in failures, failures


def zipped(files: dict, top: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(f"{top}{name}", text)
    return buf.getvalue()


def test_an_lms_download_of_course_submissions(tmp_path):
    "A zip of the students' zips: each is read, and what cannot be placed is reported, not dropped."
    ref = {f"hw2/{m}.py": text for m, text in reference_modules().items()}
    no_cnn = {k: v for k, v in ref.items() if k != "hw2/cnn.py"}
    broken = {**ref, "hw2/optimizers.py": ref["hw2/optimizers.py"] + "\ndef oops(:\n"}
    helper = {**ref, "hw2/layers.py": ref["hw2/layers.py"] + "\n\ndef unused_helper(x):\n    return x\n"}
    lms = tmp_path / "submissions.zip"
    with zipfile.ZipFile(lms, "w") as z:
        for student, files in [("111", ref), ("222", no_cnn), ("333", broken), ("444", helper)]:
            z.writestr(f"hw2-{student}.zip", zipped(files, top=f"hw2-{student}/"))
    subs = submissions_in(lms)
    assert sorted(subs) == ["111", "222", "333", "444"]
    notebooks = {p: nbformat.read(ROOT / "nbs" / f"{p}.ipynb", as_version=4) for p in load_settings().parts}
    reports = {st: place(read_submission(sub), notebooks, st)[1] for st, sub in subs.items()}
    assert reports["111"].problems == []
    assert reports["222"].problems == ["hw2/cnn.py is missing from the submission"]
    assert "part4_cnn/cnn" not in reports["222"].placed and "part4_cnn/cnn" in reports["111"].placed
    assert len(reports["333"].problems) == 1 and "hw2/optimizers.py does not parse" in reports["333"].problems[0]
    assert not any(k.startswith("part2_optimizers/") for k in reports["333"].placed)
    assert any(item.startswith("layers.unused_helper:") for item in reports["444"].not_placed)
    assert "unused_helper" in str(reports["444"])


def variant_modules(variant) -> dict:
    "The reference's modules with `variant`'s edits made (each must apply exactly once)."
    modules = reference_modules()
    module = Path(variant.module).stem
    for old, new in variant.edits:
        assert modules[module].count(old) == 1, f"{variant.name}: {old!r} is not once in {variant.module}"
        modules[module] = modules[module].replace(old, new)
    return modules


def parts_of(module: str) -> list:
    "The notebooks (of PARTS) whose solution cells a course module's definitions go to."
    sources, _ = place({module: reference_modules()[module]}, {p: student_version(p) for p in load_settings().parts})
    return [p for p in PARTS if p in sources]


@pytest.fixture
def torchvision_home(tmp_path, monkeypatch):
    "A home whose ~/.pytorch-datasets holds the grader's torchvision copy of CIFAR-10, as a sandboxed kernel's does."
    import torchvision.datasets
    from grader.torchvision_data import STARTUP, cached_cifar10
    monkeypatch.delenv("DLCOURSE_CIFAR10", raising=False)
    (tmp_path / ".pytorch-datasets").mkdir()
    (tmp_path / ".pytorch-datasets" / "cifar-10-batches-py").symlink_to(cached_cifar10())
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the course's cnn_experiment writes ./results
    cls = torchvision.datasets.CIFAR10
    saved = cls.train_list, cls.test_list, cls.meta
    exec(STARTUP, {})  # what the grading kernels' start-up does
    yield tmp_path
    cls.train_list, cls.test_list, cls.meta = saved


def test_the_course_faithful_cnn_experiment_trains_on_torchvisions_cifar10(torchvision_home):
    "Part 5 as the course writes it: cnn_experiment loads CIFAR-10 with torchvision from ~/.pytorch-datasets."
    failures, report = main_cell_failures(reference_modules(), parts=["part5_experiments"])
    assert failures == {}, failures
    assert {"part5_experiments/cnn_experiment", "part5_experiments/your_cnn"} <= set(report.placed)
