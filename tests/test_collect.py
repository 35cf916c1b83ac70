"""`python -m grader collect`: LMS downloads filed in `submitted/` by nbgrader's zip_collect, nothing lost or reverted.

Each test builds a download as an LMS writes it (names, folders, member dates) from small notebooks that say whose
and which version they are, collects it into a fresh course directory and reads back what was filed.
"""
import dataclasses
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from grader.collect import collect
from grader.course import NBS_DIR, ROOT, Course, CourseError, load_settings

REFERENCE = Path(__file__).resolve().parent / "course_format" / "reference"
P1, P4 = "part1_backprop.ipynb", "part4_cnn.ipynb"


@pytest.fixture
def course(tmp_path):
    "A course directory with its release (the chapter notebooks stand in for it: only names and cells are read)."
    settings = dataclasses.replace(load_settings(), collect_timezone="Europe/Berlin")
    course = Course(settings, root=tmp_path / "course")
    course.release.mkdir(parents=True)
    for part in settings.parts:
        shutil.copy(NBS_DIR / f"{part}.ipynb", course.release)
    return course


def notebook(text: str) -> str:
    return nbformat.writes(new_notebook(cells=[new_markdown_cell(text)]))


def zipped(path: Path, files: dict) -> Path:
    "A zip of name -> (content, date as a tuple); content is a str or bytes."
    with zipfile.ZipFile(path, "w") as z:
        for name, (content, date) in files.items():
            z.writestr(zipfile.ZipInfo(name, date), content)
    return path


def filed(course, student) -> dict:
    "notebook -> its text, and the timestamp, of what lies in submitted/<student>/hw2/."
    folder = course.submitted(student)
    nbs = {p.name: nbformat.read(p, as_version=4).cells[0].source for p in sorted(folder.glob("*.ipynb"))}
    stamp = (folder / "timestamp.txt").read_text().strip() if (folder / "timestamp.txt").exists() else None
    return {"notebooks": nbs, "timestamp": stamp}


MAR1 = (2024, 3, 1, 12, 0, 0)  # 11:00 UTC in Berlin


def test_canvas_download(course, tmp_path):
    "Canvas: `<lastfirst>_[LATE_]<id>_<submission>_<file>`, a file uploaded again numbered `-1`."
    download = zipped(tmp_path / "submissions.zip", {
        "doejane_123_456_part1_backprop.ipynb": (notebook("jane p1"), MAR1),
        "doejane_123_457_part4_cnn-1.ipynb": (notebook("jane p4"), (2024, 3, 1, 12, 30, 0)),
        "smithbob_LATE_789_458_part1_backprop.ipynb": (notebook("bob p1"), (2024, 3, 3, 9, 0, 0)),
        "smithbob_LATE_789_458_notes.pdf": (b"%PDF-1.4", MAR1),
        "part2_training.ipynb": (notebook("whose?"), MAR1),
        "doejane_123_459_scratch.ipynb": (notebook("jane scratch"), MAR1),
    })
    result = collect(course, [download], out=lambda r: None)
    assert filed(course, "123") == {"notebooks": {P1: "jane p1", P4: "jane p4"}, "timestamp": "2024-03-01 11:30:00"}
    assert filed(course, "789") == {"notebooks": {P1: "bob p1"}, "timestamp": "2024-03-03 08:00:00"}
    assert course.submitted_students() == ["123", "789"]
    assert result.skipped.keys() == {"submissions/smithbob_LATE_789_458_notes.pdf",
                                     "submissions/part2_training.ipynb", "submissions/doejane_123_459_scratch.ipynb"}
    assert result.skipped["submissions/smithbob_LATE_789_458_notes.pdf"] == "not a notebook"
    assert result.skipped["submissions/part2_training.ipynb"].startswith("no student id in its name")
    assert result.skipped["submissions/doejane_123_459_scratch.ipynb"] == "not a notebook of hw2 (scratch.ipynb)"
    assert "123: 2 notebooks" in str(result) and "part2_training.ipynb: no student id" in str(result)


def test_moodle_download_flat_and_in_folders(course, tmp_path):
    "Moodle: `<Full Name>_<id>_assignsubmission_file_<file>`, or the same as a folder per student."
    download = zipped(tmp_path / "hw2-moodle.zip", {
        "Jane Doe_2001_assignsubmission_file_part1_backprop.ipynb": (notebook("jane p1"), MAR1),
        "Bob_Smith Jr_2002_assignsubmission_file_/part4_cnn.ipynb": (notebook("bob p4"), MAR1),
        "Bob_Smith Jr_2002_assignsubmission_onlinetext_/onlinetext.html": (b"<p>hi</p>", MAR1),
    })
    result = collect(course, [download], out=lambda r: None)
    assert filed(course, "2001")["notebooks"] == {P1: "jane p1"}
    assert filed(course, "2002") == {"notebooks": {P4: "bob p4"}, "timestamp": "2024-03-01 11:00:00"}
    assert result.skipped == {"hw2-moodle/Bob_Smith Jr_2002_assignsubmission_onlinetext_/onlinetext.html":
                              "not a notebook"}


def test_blackboard_attempts_keep_the_newest_and_its_time(course, tmp_path):
    "Blackboard: `<assignment>_<user>_attempt_<time>_<file>`; the time is the name's, the newer attempt wins."
    first, second = "2024-03-01-10-00-00", "2024-03-02-18-30-00"
    download = zipped(tmp_path / "gradebook_hw2.zip", {
        f"Homework 2_jdoe_attempt_{first}_part1_backprop.ipynb": (notebook("jdoe p1 v1"), MAR1),
        f"Homework 2_jdoe_attempt_{first}_part4_cnn.ipynb": (notebook("jdoe p4 v1"), MAR1),
        f"Homework 2_jdoe_attempt_{first}.txt": (b"Name: J Doe", MAR1),
        f"Homework 2_jdoe_attempt_{second}_part1_backprop.ipynb": (notebook("jdoe p1 v2"), MAR1),
    })
    result = collect(course, [download], out=lambda r: None)
    # the zip's member dates are ignored where the name has a time; Berlin is UTC+1 in March
    assert filed(course, "jdoe") == {"notebooks": {P1: "jdoe p1 v2", P4: "jdoe p4 v1"},
                                     "timestamp": "2024-03-02 17:30:00"}
    assert result.skipped[f"gradebook_hw2/Homework 2_jdoe_attempt_{first}_part1_backprop.ipynb"] == \
        "an older copy of a notebook this student handed in again"
    assert result.skipped[f"gradebook_hw2/Homework 2_jdoe_attempt_{first}.txt"] == "not a notebook"


def test_students_zips_a_zip_of_them_and_folders(course, tmp_path):
    "`<id>.zip` with the notebooks inside (in a folder or not), a zip of such zips, and a folder per student."
    alice = zipped(tmp_path / "alice.zip", {"hw2/part1_backprop.ipynb": (notebook("alice p1"), MAR1),
                                            "hw2/hw2/layers.py": (b"# exported by nbdev", MAR1),  # her edition's
                                            "__MACOSX/hw2/._part1_backprop.ipynb": (b"\0", MAR1)})
    inner = {name: zipped(tmp_path / f"{name}.zip", {P4: (notebook(f"{name} p4"), (2024, 3, 2, 8, 0, 0))})
             for name in ("bob", "hw2-carol")}
    everyone = tmp_path / "all.zip"
    with zipfile.ZipFile(everyone, "w") as z:
        for name, path in inner.items():
            z.write(path, f"all/{name}.zip")
        z.writestr("all/erin.zip", b"not a zip")
    folders = tmp_path / "handed-in"
    (folders / "dan").mkdir(parents=True)
    (folders / "dan" / P1).write_text(notebook("dan p1"))
    os.utime(folders / "dan" / P1, (1709290800, 1709290800))  # 2024-03-01 11:00 UTC
    (tmp_path / "frank.zip").write_bytes(b"an upload cut short")
    result = collect(course, [alice, everyone, folders, tmp_path / "frank.zip"], out=lambda r: None)
    assert course.submitted_students() == ["alice", "bob", "carol", "dan"]
    assert filed(course, "alice") == {"notebooks": {P1: "alice p1"}, "timestamp": "2024-03-01 11:00:00"}
    assert filed(course, "bob") == {"notebooks": {P4: "bob p4"}, "timestamp": "2024-03-02 07:00:00"}
    assert filed(course, "carol")["notebooks"] == {P4: "hw2-carol p4"}
    assert filed(course, "dan") == {"notebooks": {P1: "dan p1"}, "timestamp": "2024-03-01 11:00:00"}
    assert result.skipped == {"all.zip/all/erin.zip": "not a readable zip", "frank.zip": "not a readable zip",
                              "alice/hw2/hw2/layers.py": "not a notebook"}
    assert result.imported == []


def test_a_course_format_zip_goes_through_the_importer(course, tmp_path):
    "A student's zip of the course's modules (`hw2/*.py`), under an LMS name: placed in the notebooks, time kept."
    eves = "    def _make_mlp(self):  # eve's"
    modules = {f"hw2-eve/hw2/{p.name}": (p.read_text().replace("    def _make_mlp(self):", eves),
                                         (2024, 3, 1, 20, 0, 0)) for p in sorted((REFERENCE / "hw2").glob("*.py"))}
    download = tmp_path / "canvas.zip"
    with zipfile.ZipFile(download, "w") as z:
        z.writestr("evans_555_1_hw2-eve.zip", zipped(tmp_path / "eve.zip", modules).read_bytes())
        z.writestr("doejane_123_456_part1_backprop.ipynb", notebook("jane p1"))
    reports = []
    result = collect(course, [download], out=reports.append)
    assert [r.student for r in result.imported] == ["555"] and reports[0].startswith("555: ")
    assert result.imported[0].problems == []
    cnn = nbformat.read(course.submitted("555") / P4, as_version=4)
    assert eves in next(c.source for c in cnn.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "cnn")
    assert len(list(course.submitted("555").glob("*.ipynb"))) == len(course.settings.parts)
    assert filed(course, "555")["timestamp"] == "2024-03-01 19:00:00"
    assert filed(course, "123")["notebooks"] == {P1: "jane p1"}


def test_an_older_download_never_replaces_a_newer_submission(course, tmp_path):
    "Collecting again: the older copy is reported and left out, a newer one replaces the whole submission."
    def canvas(name, version, date, parts=(P1, P4)):
        return zipped(tmp_path / name, {f"doejane_123_456_{p}": (notebook(f"{p} {version}"), date) for p in parts})

    collect(course, [canvas("new.zip", "v2", (2024, 3, 2, 12, 0, 0))], out=lambda r: None)
    result = collect(course, [canvas("old.zip", "v1", MAR1)], out=lambda r: None)
    assert filed(course, "123") == {"notebooks": {P1: f"{P1} v2", P4: f"{P4} v2"}, "timestamp": "2024-03-02 11:00:00"}
    assert result.filed == {} and "is not older than this one" in result.kept["123"]
    again = collect(course, [canvas("new.zip", "v2", (2024, 3, 2, 12, 0, 0))], out=lambda r: None)
    assert again.filed == {} and "123" in again.kept  # the same download twice: nothing to do
    collect(course, [canvas("newest.zip", "v3", (2024, 3, 3, 12, 0, 0), parts=(P1,))], out=lambda r: None)
    assert filed(course, "123") == {"notebooks": {P1: f"{P1} v3"}, "timestamp": "2024-03-03 11:00:00"}


def test_a_submission_without_a_time_is_kept(course, tmp_path):
    "One put there by hand (no timestamp.txt): which is newer cannot be told, so it stays and the report says so."
    course.submitted("123").mkdir(parents=True)
    (course.submitted("123") / P1).write_text(notebook("by hand"))
    result = collect(course, [zipped(tmp_path / "c.zip", {f"doejane_123_456_{P1}": (notebook("lms"), MAR1)})],
                     out=lambda r: None)
    assert filed(course, "123")["notebooks"] == {P1: "by hand"} and "no timestamp.txt" in result.kept["123"]


def test_pattern_for_other_names_and_bad_patterns(course, tmp_path):
    download = zipped(tmp_path / "other.zip", {f"s1234567-{P1}": (notebook("s1234567 p1"), MAR1)})
    assert collect(course, [download], out=lambda r: None).filed == {}
    collect(course, [download], pattern=r"(?P<student_id>s\d{7})-(?P<file_id>.+)$", out=lambda r: None)
    assert filed(course, "s1234567")["notebooks"] == {P1: "s1234567 p1"}
    with pytest.raises(CourseError, match="student_id"):
        collect(course, [download], pattern=r"(?P<file_id>.+)")
    with pytest.raises(CourseError, match="not a regular expression"):
        collect(course, [download], pattern=r"(?P<student_id")
    with pytest.raises(CourseError, match="no such file"):
        collect(course, [tmp_path / "missing.zip"])


@pytest.mark.slow
def test_settings_pattern_is_in_nbgrader_config_and_nbgrader_zip_collect_uses_it(course, tmp_path):
    "The generated nbgrader_config.py carries settings.ini's pattern, so `nbgrader zip_collect` alone reads the names."
    ini = tmp_path / "settings.ini"
    ini.write_text((ROOT / "settings.ini").read_text().replace(
        "\npattern =\n", "\npattern = (?P<student_id>s\\d+)-(?P<file_id>.+)$  # ids like s42\n", 1).replace(
        "\ntimezone =\n", "\ntimezone = Europe/Berlin\n", 1))
    course.settings = load_settings(ini)
    assert course.settings.collect_pattern == r"(?P<student_id>s\d+)-(?P<file_id>.+)$"
    course.write_config()
    archive = course.root / "downloaded" / "hw2" / "archive"
    archive.mkdir(parents=True)
    zipped(archive / "lms.zip", {f"s42-{P1}": (notebook("s42 p1"), MAR1),
                                 f"doejane_123_456_{P4}": (notebook("j"), MAR1)})
    res = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", "hw2"], cwd=course.root,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert filed(course, "s42") == {"notebooks": {P1: "s42 p1"}, "timestamp": "2024-03-01 11:00:00"}
    assert filed(course, "123")["notebooks"] == {P4: "j"}
