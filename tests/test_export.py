"""dlcourse/ is exactly what nbdev-export makes of nbs/, and carries no grading markers."""
import shutil
import subprocess
import sys
from pathlib import Path

from dlcourse.authoring import HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, SOLUTION_END

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "dlcourse"


def library_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_library_is_the_export_of_the_notebooks(tmp_path):
    for name in ("nbs", "dlcourse"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for p in (tmp_path / "dlcourse").glob("*.py"):
        if p.name not in ("__init__.py", "authoring.py"):  # authoring holds the export processor itself
            p.unlink()
    subprocess.run([str(Path(sys.executable).with_name("nbdev-export"))], cwd=tmp_path, check=True)
    assert library_files(tmp_path / "dlcourse") == library_files(LIB), \
        "dlcourse/ is out of step with nbs/: run `make export` and commit the result"


def test_no_grading_markers_in_the_library():
    markers = {SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END}
    for path in LIB.glob("*.py"):
        assert not markers & {line.strip() for line in path.read_text().splitlines()}, path


def test_notebooks_are_clean_and_nbdev_clean_keeps_nbgrader_metadata(tmp_path):
    shutil.copytree(ROOT / "nbs", tmp_path / "nbs")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    subprocess.run([str(Path(sys.executable).with_name("nbdev-clean"))], cwd=tmp_path, check=True)
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        cleaned = (tmp_path / "nbs" / nb.name).read_text()
        assert cleaned == nb.read_text(), f"{nb.name} is not clean: run nbdev-clean and commit"
    part1 = (tmp_path / "nbs" / "part1_backprop.ipynb").read_text()
    assert part1.count('"nbgrader"') == (ROOT / "nbs" / "part1_backprop.ipynb").read_text().count('"nbgrader"') > 20
