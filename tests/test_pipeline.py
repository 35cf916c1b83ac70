"""The grading pipeline end to end, in a temporary course directory: student and solution
versions, the sample submissions autograded, grades exported, secrets kept."""
import dataclasses
import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dlcourse.authoring import HIDDEN_BEGIN, SOLUTION_BEGIN, given_lines, remove_hidden_tests, solution_lines
from grader.course import ROOT, Course, CourseError, check_no_leaks, load_settings
from grader.report import format_table, scores
from grader.batch import Batch
from grader.course_import import import_submissions
from grader.samples import SAMPLES, build_submission, edited_parts

pytestmark = pytest.mark.slow  # grades whole submissions


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    # the training experiments run on the embedded CIFAR-10 sample here, whatever the environment holds
    os.environ.pop("DLCOURSE_CIFAR10", None)
    course = Course(load_settings(), root=tmp_path_factory.mktemp("course"))
    course.student_version()
    return course


# Submitted whole; each other sample submits only the notebooks its bug is in (`make demo` grades every sample
# whole). The bank (tests/test_bank.py) runs every notebook's hidden tests on many more bugs, in process.
WHOLE = ("reference", "blank", "alt_conventions")
BUGS = [n for n in SAMPLES if n not in WHOLE]
# a module that fails to import is graded with the later parts that must not depend on it
SUBMITTED = {"classifier_import_fails": None}  # None: every notebook
# where a bug shows when not in the notebook it is written in: the classifier module's import fails, and Part 3's
# experiments import it (as the course's do); its own notebook's cells ran before the failing definition
LOSES_IN = {"classifier_import_fails": ["part3_experiments"]}
# a complete solution written to the course's own skeleton, handed in in the course's format (hw2/*.py)
COURSE_FORMAT = Path(__file__).resolve().parent / "course_format" / "reference"


def submitted_parts(course, name):
    return SUBMITTED[name] or course.settings.parts if name in SUBMITTED else edited_parts(course, SAMPLES[name])


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    names = list(SAMPLES)
    for name in names:
        build_submission(course, SAMPLES[name], None if name in WHOLE else submitted_parts(course, name))
    handed_in = tmp_path_factory.mktemp("lms") / "hw2-course_format"
    shutil.copytree(COURSE_FORMAT, handed_in)
    import_submissions(course, handed_in, out=lambda report: None)
    names.append("course_format")
    errors = Batch(course).grade(names, progress=False)
    assert errors == {name: None for name in names}
    return scores(course, names)


def source_cells(course):
    for path in sorted(course.source.glob("*.ipynb")):
        yield path.name, nbformat.read(path, as_version=4).cells


def test_student_version_has_no_solutions_and_no_hidden_tests(course):
    checked = 0
    for name, cells in source_cells(course):
        text = (course.release / name).read_text()
        assert SOLUTION_BEGIN not in text and HIDDEN_BEGIN not in text
        assert "raise NotImplementedError(" in text
        released = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(course.release / name, 4).cells
                    if "nbgrader" in c.metadata}
        for cell in cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid is None:
                continue
            out_lines = {line.strip() for line in released[gid].splitlines()}
            stripped = lambda text: {line.strip() for line in text.splitlines()}
            secret = {line.strip() for line in solution_lines(cell.source)} - stripped("\n".join(given_lines(cell.source)))
            secret |= stripped(cell.source) - stripped(remove_hidden_tests(cell.source))
            for line in secret:
                if line and not line.startswith("###"):
                    assert line not in out_lines, f"{gid}: {line!r} reached the student version"
                    checked += 1
    assert checked > 100  # the check really looked at the solutions and hidden tests


STUB_LINE = re.compile(r'raise NotImplementedError\((.*)\)$')
NAMED = re.compile(r'"`([\w.]+)` is not written yet: fill in its `# YOUR CODE HERE` in (\w+)\.ipynb(, then run nbdev-export)?"')


def test_every_stub_of_the_student_version_names_its_exercise_and_notebook(course):
    names = {}
    for path in sorted(course.release.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if not cell.metadata.get("nbgrader", {}).get("solution") or cell.cell_type != "code":
                continue
            for line in cell.source.splitlines():
                stub = STUB_LINE.search(line.strip())
                if stub:
                    named = NAMED.fullmatch(stub.group(1))
                    assert named, f"{path.stem}: a stub that names nothing: {line.strip()}"
                    assert named.group(2) == path.stem
                    assert bool(named.group(3)) == cell.source.startswith("#| export"), line  # exported: export it
                    names.setdefault(path.stem, set()).add(named.group(1))
    assert names["part4_cnn"] == {"CNN._make_feature_extractor", "CNN._n_features", "CNN._make_mlp",
                                  "ResidualBlock.__init__", "ResidualBottleneckBlock.__init__",
                                  "ResNet._make_feature_extractor", "part4_optim_hp"}
    assert {"mlp_experiment"} == names["part3_experiments"] and "LeakyReLU.forward" in names["part1_backprop"]
    assert sum(map(len, names.values())) >= 45


def test_a_stub_names_its_function_class_or_exercise():
    from grader.preprocessors import name_stubs
    source = ("#| export\nclass A:\n    class B:\n        def f(self):\n            # YOUR CODE HERE\n"
              "            raise NotImplementedError()\n    def g(self):\n        raise NotImplementedError()\n")
    named = name_stubs(source, "nb", "ex1").splitlines()
    assert named[5].strip() == 'raise NotImplementedError("`A.B.f` is not written yet: fill in its `# YOUR CODE ' \
                                'HERE` in nb.ipynb, then run nbdev-export")'
    assert "`A.g` is not written yet" in named[7] and named[:5] == source.splitlines()[:5]
    # outside any function, not exported, with an IPython magic: the exercise's grade id, no export
    top = name_stubs("%matplotlib inline\nx = 1\nraise NotImplementedError()", "nb", "ex2").splitlines()
    assert top == ["%matplotlib inline", "x = 1",
                   'raise NotImplementedError("`ex2` is not written yet: fill in its `# YOUR CODE HERE` in nb.ipynb")']
    assert name_stubs("raise NotImplementedError('mine')", "nb", "ex3") == "raise NotImplementedError('mine')"


def test_student_version_ships_what_a_student_needs_and_no_secrets(course):
    files = {p.name for p in course.release.iterdir()}
    assert {"README.md", "pyproject.toml"} <= files
    assert not any(p.name.endswith(".db") for p in course.release.rglob("*"))


def test_leak_check_catches_a_leaking_release(course, tmp_path):
    shutil.copytree(course.release, tmp_path / "release")
    nb_path = next((tmp_path / "release").glob("*.ipynb"))
    nb = nbformat.read(nb_path, as_version=4)
    test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
    source = {c.metadata["nbgrader"]["grade_id"]: c for _, cells in source_cells(course) for c in cells
              if "nbgrader" in c.metadata}
    test_cell.source = source[test_cell.metadata["nbgrader"]["grade_id"]].source  # hidden tests put back
    nbformat.write(nb, nb_path)
    with pytest.raises(CourseError, match="leak"):
        check_no_leaks(course.source, tmp_path / "release")


def test_solution_version_has_solutions_but_no_hidden_tests(course):
    course.solution_version()
    for name, cells in source_cells(course):
        text = (course.solution / name).read_text()
        assert HIDDEN_BEGIN not in text and "raise NotImplementedError()" not in text
        solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(course.solution / name, 4).cells
                    if "nbgrader" in c.metadata}
        for cell in cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            for line in solution_lines(cell.source):
                assert line in solution[gid], f"{gid}: solution line {line.strip()!r} is missing"
            hidden = {line.strip() for line in cell.source.splitlines()} - \
                     {line.strip() for line in remove_hidden_tests(cell.source).splitlines()}
            assert not hidden & {line.strip() for line in solution.get(gid, "").splitlines()} - {""}, gid


def test_gradebook_is_never_committed():
    for path in ("grader/gradebook.db", "gradebook.db", "nbs/gradebook.db"):
        res = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert res.returncode == 0, f"{path}: a gradebook holds the hidden tests, it must be git-ignored"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [p for p in tracked if p.endswith("gradebook.db")]


def test_reference_gets_full_marks_and_blank_gets_zero(graded):
    for part, sc in graded["reference"].items():
        assert sc.auto == sc.auto_max > 0 and sc.failed == [], part
    for part, sc in graded["blank"].items():
        assert sc.auto == 0, part


def test_a_module_that_fails_to_import_costs_no_points_in_parts_that_do_not_import_it(graded):
    # the course's Part 4 and 5 modules never import the classifier module: neither do ours
    scored = graded["classifier_import_fails"]
    assert scored["part3_experiments"].course < scored["part3_experiments"].course_max
    for part in ("part4_cnn", "part5_experiments"):
        assert scored[part].auto == scored[part].auto_max > 0, (part, scored[part].failed)


def test_a_solution_written_to_the_course_skeleton_gets_every_course_point(graded):
    "Imported from the course's format (python -m grader import); only the project's additions may lose points."
    for part, sc in graded["course_format"].items():
        assert sc is not None and sc.course == sc.course_max > 0, (part, sc and sc.failed)
        assert all(gid.startswith("extra_") for gid in sc.failed), (part, sc.failed)


def test_correct_alternative_conventions_get_full_marks(graded):
    for part, sc in graded["alt_conventions"].items():
        assert sc.auto == sc.auto_max, (part, sc.failed)


@pytest.mark.parametrize("name", BUGS)
def test_each_buggy_submission_loses_points_in_its_notebooks_only(course, graded, name):
    # in the notebooks its bug is in; the notebooks it left out score 0, as nbgrader scores a missing notebook
    # (a bug may cost a notebook all its points: grid_threshold_unset fails the grid's one test cell)
    parts = LOSES_IN.get(name) or edited_parts(course, SAMPLES[name])
    auto = sum(graded[name][part].auto for part in parts)
    auto_max = sum(graded[name][part].auto_max for part in parts)
    assert auto < auto_max, (name, auto, auto_max)
    submitted = submitted_parts(course, name)
    assert all(graded[name][part].auto == 0 for part in course.settings.parts if part not in submitted)
    # and only there: with the reference in every other notebook it would score in between (make demo shows it)
    assert auto_max < sum(sc.auto_max for sc in graded["reference"].values())


def test_grade_table_and_csv(course, graded):
    table = format_table(graded, course.settings.parts)
    assert table.splitlines()[0].startswith("student")
    full = sum(sc.auto_max for sc in graded["reference"].values())
    assert any(line.startswith("reference") and f"{full:g} / {full:g}" in line for line in table.splitlines())
    csv = course.export_grades().read_text().splitlines()
    assert csv[0].startswith("assignment,duedate,timestamp,student_id")
    assert {row.split(",")[3] for row in csv[1:]} == set(SAMPLES) | {"course_format"}


def test_student_can_export_their_notebook_to_a_package(course, graded, tmp_path):
    "A student's `nbdev-export` in the release folder gives an importable hw2 package."
    work = tmp_path / "hw2"
    shutil.copytree(course.release, work)
    for nb in course.submitted("reference").glob("*.ipynb"):
        shutil.copy(nb, work)
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "nbdev-export")], cwd=work, check=True)
    check = ("from hw2.layers import MLP; from dlcourse.grad_compare import compare_layer_to_torch; import torch;"
             "assert max(compare_layer_to_torch(MLP(5, 2, [4]), torch.randn(3, 5), verbose=False)) == 0")
    subprocess.run([sys.executable, "-c", check], cwd=work, check=True)


def hidden_only_lines(course):
    "Lines that only the hidden-test regions hold (long enough to be distinctive), over every source notebook."
    hidden, visible = set(), set()
    for _, cells in source_cells(course):
        for cell in cells:
            lines = {line.strip() for line in cell.source.splitlines()}
            shown = {line.strip() for line in remove_hidden_tests(cell.source).splitlines()}
            hidden |= lines - shown
            visible |= shown
    return {line for line in hidden - visible if len(line) >= 20 and not line.startswith("###")}


def page_lines(path):
    "The stripped lines of text a feedback page shows (code keeps its lines inside <pre>)."
    from bs4 import BeautifulSoup
    return {line.strip() for line in BeautifulSoup(path.read_text(), "html.parser").get_text().splitlines()}


def test_feedback_shows_no_hidden_test(course, graded, tmp_path):
    feedback = course.feedback()
    pages = sorted(feedback.rglob("*.html"))
    assert len(pages) == len(list((course.root / "autograded").rglob("*.ipynb"))) > len(SAMPLES)
    secret = hidden_only_lines(course)
    assert len(secret) > 50
    for page in pages:
        # a line the student wrote too is theirs to see (an imported course submission has its own imports)
        student, part = page.relative_to(feedback).parts[0], page.stem
        submitted = nbformat.read(course.submitted(student) / f"{part}.ipynb", as_version=4)
        own = {line.strip() for cell in submitted.cells for line in cell.source.splitlines()}
        leaked = sorted((secret - own) & page_lines(page))
        assert not leaked, f"{page.relative_to(feedback)} shows hidden test lines: {leaked[:3]}"
    # the scan can fail: an autograded notebook rendered as plain nbconvert would render it shows hidden tests
    from nbconvert import HTMLExporter
    autograded = course.root / "autograded" / "dw_transposed" / course.settings.assignment_id / "part1_backprop.ipynb"
    plain = tmp_path / "plain.html"
    plain.write_text(HTMLExporter().from_filename(str(autograded))[0])
    assert secret & page_lines(plain)


def gradebook_rows(course):
    "student -> [(notebook, cell, cell type, auto score, manual score, max score)], read with SQL (not the code under test)."
    con = sqlite3.connect(course.gradebook_path)
    try:
        found = con.execute(
            "SELECT st.id, nb.name, bc.name, gc.cell_type, g.auto_score, g.manual_score, gc.max_score FROM grade g "
            "JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN notebook nb ON sn.notebook_id = nb.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN student st ON sa.student_id = st.id "
            "JOIN base_cell bc ON g.cell_id = bc.id JOIN grade_cells gc ON gc.id = bc.id").fetchall()
    finally:
        con.close()
    out = {}
    for student, *row in found:
        out.setdefault(student, []).append(tuple(row))
    return out


def expected_points(rows):
    "(points given, points of what is graded, points of written answers still to grade): a score or max per row."
    given = sum(m if m is not None else a for _, _, _, a, m, _ in rows if (a, m) != (None, None))
    graded_max = sum(mx for _, _, _, a, m, mx in rows if (a, m) != (None, None))
    pending = sum(mx for _, _, kind, a, m, mx in rows if (a, m) == (None, None) and kind == "markdown")
    return given, graded_max, pending


def read_csv(path):
    import csv
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_exports_keep_every_student_and_what_was_graded_by_hand(course, graded, capsys):
    """Written answers graded by hand (nbgrader's API, as formgrader does), then one student resubmits and is
    autograded again alone: every export lists every student, with the hand-graded points; a submission never
    autograded is missing, not 0; the feedback names what is not graded yet. Run last: it changes the course."""
    from grader.__main__ import autograde_and_report
    from nbgrader.api import Gradebook
    s, part = course.settings, "part1_backprop"
    manual = {("reference", "part1_q1"): 3.0, ("dw_transposed", "part1_q1"): 1.0, ("dw_transposed", "part1_q2"): 2.0}
    with Gradebook(f"sqlite:///{course.gradebook_path}", course_id=s.course_id) as gb:
        for (student, gid), points in manual.items():
            grade = gb.find_grade(gid, part, s.assignment_id, student)
            grade.manual_score, grade.needs_manual_grade = points, False
        gb.find_comment("part1_q1", part, s.assignment_id, "reference").manual_comment = "Right idea; say why."
        gb.db.commit()
    shutil.copytree(course.submitted("blank"), course.submitted("never_graded"))  # handed in, not autograded
    # dw_transposed hands in the fix: graded again, alone
    build_submission(course, dataclasses.replace(SAMPLES["reference"], name="dw_transposed"), [part])
    assert autograde_and_report(course, ["dw_transposed"]) == {"dw_transposed": None}
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("student  "))
    header = re.split(r"\s{2,}", out[start].strip())
    table = {}
    for line in itertools.takewhile(str.strip, out[start + 2:]):
        cols = re.split(r"\s{2,}", line.strip())
        table[cols[0]] = dict(zip(header, cols))

    rows = gradebook_rows(course)
    everyone = set(rows) | {"never_graded"}
    assert set(rows) == set(graded)  # the gradebook lost no one
    points = {st: expected_points(r) for st, r in rows.items()}
    written_max = {c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points for _, cells in source_cells(course) for c in cells
                   if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}
    # the hand-graded points are there after grading again; reference: 3 given, the rest of its answers to grade
    ref = {(nb, cell): (a, m) for nb, cell, _, a, m, _ in rows["reference"]}
    assert ref[(part, "part1_q1")] == (None, 3.0) and ref[(part, "part1_q2")] == (None, None)
    assert {(nb, cell): m for nb, cell, _, _, m, _ in rows["dw_transposed"] if m is not None} == \
        {(part, "part1_q1"): 1.0, (part, "part1_q2"): 2.0}
    assert points["reference"][2] == sum(written_max.values()) - written_max["part1_q1"]
    dw_part1 = [r for r in rows["dw_transposed"] if r[0] == part and r[2] == "code" and r[3] is not None]
    assert sum(r[3] for r in dw_part1) == sum(r[5] for r in dw_part1)  # the fix got every point it could

    # the table: a row per student, the total so far and what is left to grade by hand
    assert set(table) >= everyone
    assert list(table["never_graded"].values())[1] == "missing (submitted, not autograded)"
    for student, (given, graded_max, pending) in points.items():
        assert table[student]["total"] == f"{given:g} / {graded_max:g}", table[student]
        to_grade = sum(1 for r in rows[student] if r[2] == "markdown" and r[3:5] == (None, None))
        assert table[student]["to grade by hand"] == (f"{pending:g} points ({to_grade} answer{'s' * (to_grade > 1)})"
                                                           if pending else "none")

    # nbgrader's grades.csv: the gradebook's students, the hand-graded points in the score
    nbgrader_csv = {r["student_id"]: r for r in read_csv(course.root / "grades.csv")}
    assert set(nbgrader_csv) == set(rows)
    for student, (given, _, _) in points.items():
        assert float(nbgrader_csv[student]["score"]) == given, student

    # grades_by_part.csv: every student, a column per written answer, empty while it waits to be graded
    by_part = {r["student"]: r for r in read_csv(course.root / "grades_by_part.csv")}
    assert set(by_part) == everyone
    assert by_part["never_graded"]["status"] == "missing"
    assert all(v == "" for k, v in by_part["never_graded"].items() if k not in ("student", "status"))
    assert by_part["reference"][f"{part}:part1_q1"] == "3" and by_part["reference"][f"{part}:part1_q2"] == ""
    assert by_part["dw_transposed"][f"{part}:part1_q2"] == "2"
    assert by_part["blank"][f"{part}:part1_q1"] == "0"  # an unchanged answer: nbgrader's 0, nothing to grade
    assert by_part["reference"][f"{part}:extra_layers_on_gpu"] == ""  # not run on a CPU runner
    for student, (given, graded_max, pending) in points.items():
        row = by_part[student]
        assert (float(row["total"]), float(row["max"]), float(row["to_grade_by_hand"])) == (given, graded_max, pending)
        assert row["status"] == ("to grade by hand" if pending else "graded")
        assert float(row["written"]) == sum(m if m is not None else a for _, _, kind, a, m, _ in rows[student]
                                            if kind == "markdown" and (a, m) != (None, None))
        cells = {f"{nb}:{cell}": m if m is not None else a for nb, cell, _, a, m, _ in rows[student]}
        assert {k: float(v) for k, v in row.items() if k in cells and v != ""} == \
            {k: v for k, v in cells.items() if v is not None}

    # grades_lms.csv: the LMS's identifying columns, the total so far and each part's; never_graded left empty
    lms = {r["SIS Login ID"]: r for r in read_csv(course.root / "grades_lms.csv")}
    assert set(lms) == everyone
    assert lms["never_graded"][f"{s.assignment_id} total"] == ""
    for student, (given, _, _) in points.items():
        assert float(lms[student][f"{s.assignment_id} total"]) == given
        for nb in s.parts:
            in_part = [r for r in rows[student] if r[0] == nb]
            assert float(lms[student][f"{s.assignment_id} {nb}"]) == expected_points(in_part)[0], (student, nb)

    # the feedback page: the GPU test not run and the answer still to grade are named, the total is "so far"
    page = (course.root / "feedback" / "reference" / s.assignment_id / f"{part}.html")
    text = " ".join(page_lines(page))
    given, graded_max, _ = expected_points([r for r in rows["reference"] if r[0] == part])
    assert f"{given:.1f} of {graded_max:.1f} points graded so far" in text
    assert "To grade by hand: part1_q2 (2.0 points)" in text
    assert "not run: no GPU" in text and "Right idea; say why." in text and "Score: 3.0 / 4.0" in text
    assert "Score: 0.0 / 1.0" not in text and "Score: 0.0 / 2.0" not in text  # neither waiting cell shows as 0
