"""Grading a whole course (grader/batch.py): scratch gradebooks merged in one place, idempotently; a crash of the
batch or of one worker loses no other grade; a rerun grades only what is missing or resubmitted; Slurm job arrays.

The merge is checked on gradebooks built with nbgrader's API (seconds); the rest grades a one-notebook course
(Part 1) for real, in the sandbox where bubblewrap works."""
import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook, MissingEntry

import grader.batch as batch_module
from grader.batch import Batch, SlurmSettings, copy_submission, snapshot
from grader.course import ROOT, Course, load_settings
from grader.report import scores, write_breakdown
from grader.samples import SAMPLES, build_submission
from grader.sandbox import bwrap_available

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]  # nbgrader's add_submission

CELLS = {"t1": 1.0, "t2": 2.0}


@pytest.fixture(scope="module", autouse=True)
def scripts_on_path():
    "nbgrader creates a gradebook with `alembic`, which it runs by name: this environment's scripts come first."
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        yield  # the test cells of the merge tests' one notebook, with their points


def rows(db: Path):
    "Every grade and comment of every submission, read with SQL (not with the code under test)."
    con = sqlite3.connect(db)
    try:
        grades = con.execute(
            "SELECT st.id, nb.name, gc.name, g.auto_score, g.manual_score, g.needs_manual_grade FROM grade g "
            "JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN notebook nb ON sn.notebook_id = nb.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN student st ON sa.student_id = st.id "
            "JOIN base_cell gc ON g.cell_id = gc.id ORDER BY 1, 2, 3").fetchall()
        counts = con.execute("SELECT (SELECT COUNT(*) FROM submitted_assignment), (SELECT COUNT(*) FROM grade), "
                             "(SELECT COUNT(*) FROM comment), (SELECT COUNT(*) FROM student)").fetchone()
    finally:
        con.close()
    return grades, counts


@pytest.fixture(scope="module")
def tiny_gradebook(tmp_path_factory):
    "A gradebook of one assignment, notebook `nb`, two test cells (nbgrader creates it with alembic: once)."
    settings = load_settings()
    path = tmp_path_factory.mktemp("tiny") / "gradebook.db"
    with Gradebook(f"sqlite:///{path}", course_id=settings.course_id) as gb:
        gb.add_assignment(settings.assignment_id)
        gb.add_notebook("nb", settings.assignment_id)
        for name, points in CELLS.items():
            gb.add_grade_cell(name, "nb", settings.assignment_id, max_score=points, cell_type="code")
            gb.add_solution_cell(f"{name}_answer", "nb", settings.assignment_id)
    return path


@pytest.fixture
def tiny_course(tiny_gradebook):
    "A course of that one notebook in a folder of its own; no notebooks on disk."
    def make(root: Path) -> Course:
        root.mkdir(parents=True)
        course = Course(dataclasses.replace(load_settings(), parts=("nb",)), root=root)
        shutil.copy(tiny_gradebook, course.gradebook_path)
        return course
    return make


def scratch(course, run, worker, graded: dict, partial=()):
    """A worker's scratch gradebook in `run`: `graded` (student -> {cell: score}) finished, each with its marker
    (finished in the order given), `partial` students half-graded with no marker (a worker killed meanwhile)."""
    folder = course.root / "batch" / "runs" / run / worker
    (folder / "done").mkdir(parents=True, exist_ok=True)
    snapshot(course.gradebook_path, folder / "gradebook.db")
    s = course.settings
    with Gradebook(f"sqlite:///{folder / 'gradebook.db'}", course_id=s.course_id) as gb:
        for student, cells in [*graded.items(), *((p, {"t1": 1.0}) for p in partial)]:
            gb.update_or_create_student(student)
            try:
                gb.remove_submission(s.assignment_id, student)  # the snapshot's, as a worker does
            except MissingEntry:
                pass
            gb.add_submission(s.assignment_id, student)
            for cell, score in cells.items():
                gb.find_grade(cell, "nb", s.assignment_id, student).auto_score = score
            gb.db.commit()
    for student in graded:
        time.sleep(0.01)
        (folder / "done" / f"{student}.json").write_text(json.dumps(dict(
            student=student, fingerprint="f", course="c", run=run, notebooks=["nb"], finished=time.time())))


def test_merge_copies_every_finished_submission_once(tmp_path, tiny_course):
    course = tiny_course(tmp_path / "course")
    scratch(course, "r1", "worker-0", {"ann": {"t1": 1, "t2": 2}, "bob": {"t1": 0, "t2": 2}})
    scratch(course, "r1", "worker-1", {"cid": {"t1": 1, "t2": 0}}, partial=["dan"])
    batch = Batch(course)
    assert batch.merge() == 3
    grades, counts = rows(course.gradebook_path)
    assert [(g[0], g[2], g[3]) for g in grades] == [
        ("ann", "t1", 1), ("ann", "t2", 2), ("bob", "t1", 0), ("bob", "t2", 2), ("cid", "t1", 1), ("cid", "t2", 0)]
    assert counts == (3, 6, 6, 3)  # dan, whose worker stopped before its marker, is not there
    # merging twice changes nothing
    before = course.gradebook_path.read_bytes()
    assert batch.merge() == 0
    assert course.gradebook_path.read_bytes() == before
    assert rows(course.gradebook_path) == (grades, counts)


def test_a_student_graded_twice_keeps_the_latest_run(tmp_path, tiny_course):
    course = tiny_course(tmp_path / "course")
    scratch(course, "b-old", "worker-0", {"ann": {"t1": 0, "t2": 0}})
    scratch(course, "a-new", "worker-0", {"ann": {"t1": 1, "t2": 2}})  # later, though its folder sorts first
    batch = Batch(course)
    batch.merge()
    assert [g[3] for g in rows(course.gradebook_path)[0]] == [1, 2]
    # an older run found again (a crashed worker's folder, say) changes nothing
    scratch(course, "c-older", "worker-0", {"ann": {"t1": 0, "t2": 1}})
    marker = course.root / "batch" / "runs" / "c-older" / "worker-0" / "done" / "ann.json"
    m = json.loads(marker.read_text())
    marker.write_text(json.dumps({**m, "finished": m["finished"] - 3600}))
    assert batch.merge() == 0
    assert [g[3] for g in rows(course.gradebook_path)[0]] == [1, 2]
    assert rows(course.gradebook_path)[1] == (1, 2, 2, 1)  # no duplicate


def test_a_merge_that_crashes_loses_and_doubles_nothing(tmp_path, monkeypatch, tiny_course):
    course = tiny_course(tmp_path / "course")
    graded = {"ann": {"t1": 1, "t2": 2}, "bob": {"t1": 0, "t2": 2}, "cid": {"t1": 1, "t2": 0}}
    scratch(course, "r1", "worker-0", graded)
    clean = tiny_course(tmp_path / "clean")
    scratch(clean, "r1", "worker-0", graded)
    Batch(clean).merge()
    calls = []

    def crash_on_second_ledger_write(path, text):  # the second student is in the gradebook, not in the ledger
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_write(path, text)
    real_write = batch_module.write_atomic
    monkeypatch.setattr(batch_module, "write_atomic", crash_on_second_ledger_write)
    with pytest.raises(KeyboardInterrupt):
        Batch(course).merge()
    monkeypatch.setattr(batch_module, "write_atomic", real_write)
    assert Batch(course).merge() == 2  # bob again (the same grades), and cid
    assert rows(course.gradebook_path) == rows(clean.gradebook_path)


def graded_then_by_hand(course, score, comment=None):
    "ann autograded (t1: 0 of 1, t2: 2) and merged, then t1 scored `score` by hand (with `comment`): the batch."
    scratch(course, "r1", "worker-0", {"ann": {"t1": 0, "t2": 2}})
    batch = Batch(course)
    batch.merge()
    s = course.settings
    with Gradebook(f"sqlite:///{course.gradebook_path}", course_id=s.course_id) as gb:
        gb.find_grade("t1", "nb", s.assignment_id, "ann").manual_score = score
        if comment:
            gb.find_comment("t1_answer", "nb", s.assignment_id, "ann").manual_comment = comment
        gb.db.commit()
    return batch


def test_a_merge_again_keeps_what_a_person_graded_since(tmp_path, tiny_course):
    course = tiny_course(tmp_path / "course")
    batch = graded_then_by_hand(course, 1)
    batch.merge()
    assert [g[4] for g in rows(course.gradebook_path)[0]] == [1, None]


def test_grading_again_keeps_what_a_person_graded(tmp_path, tiny_course):
    "A student graded by hand, then autograded again (a resubmission): the person's score and comment stay."
    course = tiny_course(tmp_path / "course")
    batch = graded_then_by_hand(course, 0.5, "half: no edge case")
    # the second run's worker starts from a snapshot and grades a fresh submission: no manual score in it
    scratch(course, "r2", "worker-0", {"ann": {"t1": 1, "t2": 0}})
    assert batch.merge() == 1
    grades, counts = rows(course.gradebook_path)
    assert [(g[2], g[3], g[4]) for g in grades] == [("t1", 1, 0.5), ("t2", 0, None)]
    con = sqlite3.connect(course.gradebook_path)
    assert con.execute("SELECT manual_comment FROM comment WHERE manual_comment IS NOT NULL").fetchall() == \
        [("half: no edge case",)]
    con.close()


def test_copy_submission_sets_rather_than_adds(tmp_path, tiny_course):
    course = tiny_course(tmp_path / "course")
    scratch(course, "r1", "worker-0", {"ann": {"t1": 1, "t2": 2}})
    src = course.root / "batch" / "runs" / "r1" / "worker-0" / "gradebook.db"
    s = course.settings
    for _ in range(3):
        with Gradebook(f"sqlite:///{src}", course_id=s.course_id) as a, \
                Gradebook(f"sqlite:///{course.gradebook_path}", course_id=s.course_id) as b:
            copy_submission(a, b, s.assignment_id, "ann", ["nb"])
    assert rows(course.gradebook_path)[1] == (1, 2, 2, 1)


def test_slurm_groups_follow_the_settings(tmp_path):
    ini = tmp_path / "settings.ini"
    ini.write_text("[slurm]\nstudents_per_task = 3\npartition = cpu  # a comment\ngpu_partition = gpu\n"
                   "gpu_parts = p4 p5\n")
    s = SlurmSettings.load(ini)
    assert s.students_per_task == 3
    assert s.groups(("p1", "p4", "p2", "p5")) == [("cpu", 0, ("p1", "p2")), ("gpu", 1, ("p4", "p5"))]
    assert SlurmSettings.load(tmp_path / "missing.ini").groups(("p1",)) == [(None, 0, ("p1",))]


# -- real grading: a Part 1 course, in the sandbox where it starts

RUNNER = "sandbox" if bwrap_available() is None else "parallel"


@pytest.fixture(scope="module")
def part1(tmp_path_factory):
    os.environ.pop("DLCOURSE_CIFAR10", None)
    settings = dataclasses.replace(load_settings(), parts=("part1_backprop",), runner=RUNNER, workers=2)
    course = Course(settings, root=tmp_path_factory.mktemp("course"))
    course.student_version()
    for name in ("reference", "dw_transposed", "blank"):
        build_submission(course, SAMPLES[name])
    return course


def points(course, students):
    "student -> the course's points of Part 1 (its additions, the extra_ cells, apart)"
    return {st: None if sc["part1_backprop"] is None else sc["part1_backprop"].course
            for st, sc in scores(course, students).items()}


def kill_worker_grading(course, student, found: list, after=3.0, timeout=600):
    "SIGKILL the grading process a few seconds after it starts on `student` (a worker lost mid-batch)."
    end = time.time() + timeout
    while time.time() < end:
        for marker in (course.root / "batch" / "runs").glob("*/worker-*/grading"):
            try:
                if marker.read_text() == student:
                    pid = int((marker.parent / "pid").read_text())
                    time.sleep(after)
                    os.kill(pid, signal.SIGKILL)
                    found.append(pid)
                    return
            except (OSError, ValueError):
                continue
        time.sleep(0.2)


CRASHING_BATCH = """
import dataclasses, sys
from grader.batch import Batch
from grader.course import Course, load_settings
settings = dataclasses.replace(load_settings(), parts=("part1_backprop",), runner={runner!r}, workers=1)
Batch(Course(settings, root={root!r})).grade(["reference", "dw_transposed", "blank"], progress=False)
"""


def test_a_crashed_batch_resumes_and_a_killed_worker_costs_only_its_submission(part1):
    course, students = part1, ["reference", "dw_transposed", "blank"]
    # 1. the whole batch is killed (kill -9, every process of it) once its first submission is finished
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_BATCH.format(runner=RUNNER, root=str(course.root))],
                            cwd=ROOT, start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    done = course.root / "batch" / "runs"
    while not list(done.glob("*/*/done/reference.json")):
        assert proc.poll() is None, "the batch ended before it was killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not course.gradebook_path.exists() or rows(course.gradebook_path)[1][0] == 0  # nothing merged yet
    # 2. rerun: the finished one is merged, not graded again; one of the two others loses its worker midway
    batch = Batch(course)
    killed = []
    killer = threading.Thread(target=kill_worker_grading, args=(course, "blank", killed))
    killer.start()
    errors = batch.grade(students, progress=False)
    killer.join()
    assert killed, "the worker grading `blank` was never seen"
    assert errors["reference"] is None and errors["dw_transposed"] is None
    assert "blank" in errors and errors["blank"]  # reported, not lost silently
    got = points(course, students)
    assert got["reference"] == 21 and got["dw_transposed"] == 13  # the course's points: 21, minus the 8 of
    assert got["blank"] is None  # the three tests that use Linear's gradient; blank: not in the gradebook
    assert batch.todo(students) == ["blank"]
    # 3. a resubmission: dw_transposed hands in the reference; a rerun grades it and blank, nothing else
    build_submission(course, dataclasses.replace(SAMPLES["reference"], name="dw_transposed"))
    assert batch.todo(students) == ["dw_transposed", "blank"]
    assert batch.grade(students, progress=False) == {st: None for st in students}
    assert points(course, students) == {"reference": 21, "dw_transposed": 21, "blank": 0}
    # each student once in the gradebook, every cell graded once; a rerun grades nothing
    grades, counts = rows(course.gradebook_path)
    assert counts[0] == 3 and len(grades) == len({g[:3] for g in grades})
    assert batch.todo(students) == []
    assert not list((course.root / "batch" / "runs").glob("*"))  # merged runs leave nothing behind
    # grades out: nbgrader's CSV and the per-part breakdown
    table = write_breakdown(course, course.root / "by_part.csv").read_text().splitlines()
    assert table[0].startswith("student,status,part1_backprop:test_leaky_relu,")
    assert table[0].endswith(",part1_backprop,part1_backprop:additions,part1_backprop:written,"
                             "course,additions,written,total,max,to_grade_by_hand,not_run") and len(table) == 4
    by_student = {line.split(",")[0]: line.split(",") for line in table[1:]}
    # the course's 21 points and the project's 2 additional ones apart, then together (written answers: the
    # reference's 6 points wait to be graded by hand, blank's unchanged answers score 0; the GPU test: not run)
    assert by_student["blank"][-7:] == ["0", "0", "0", "0", "29", "0", "1"]
    assert by_student["reference"][-7:] == ["21", "2", "0", "23", "23", "6", "1"]
    assert "dw_transposed" in course.export_grades().read_text()


def test_a_second_batch_at_the_same_time_is_refused(part1):
    batch = Batch(part1)
    with batch.lock():
        with pytest.raises(Exception, match="another grading batch is running"):
            batch.grade(["reference"], progress=False)


def test_the_course_graded_as_a_slurm_job_array(part1, slurm):
    course, students = part1, ["on_slurm_ref", "on_slurm_dw"]
    build_submission(course, dataclasses.replace(SAMPLES["reference"], name=students[0]))
    build_submission(course, dataclasses.replace(SAMPLES["dw_transposed"], name=students[1]))
    one_each = SlurmSettings(students_per_task=1, cpus_per_task=1)
    seen = []
    real = batch_module.Batch.finish_slurm

    def spy(self, run, todo, logs):  # what was submitted, and each task's log
        seen.append((sorted(todo), (run / "logs" / "grade-0.sbatch").read_text(),
                     [logs[st].read_text() for st in todo]))
        return real(self, run, todo, logs)
    batch_module.Batch.finish_slurm = spy
    try:
        assert Batch(course).grade_on_slurm(students, one_each, progress=False, poll=1) == {st: None for st in students}
        assert points(course, students) == {"on_slurm_ref": 21, "on_slurm_dw": 13}
        assert "#SBATCH --array=0-1" in seen[0][1] and "grade-shard" in seen[0][1]
        assert sorted(log.split()[-2:] for log in seen[0][2]) == [["on_slurm_dw:", "graded"], ["on_slurm_ref:", "graded"]]
        # a resubmission: one task, for it alone
        build_submission(course, dataclasses.replace(SAMPLES["reference"], name="on_slurm_dw"))
        assert Batch(course).grade_on_slurm(students, one_each, progress=False, poll=1) == {st: None for st in students}
    finally:
        batch_module.Batch.finish_slurm = real
    assert seen[1][0] == ["on_slurm_dw"] and "#SBATCH --array=0-0" in seen[1][1]
    assert points(course, students) == {"on_slurm_ref": 21, "on_slurm_dw": 21}
    assert Batch(course).todo(students) == []
