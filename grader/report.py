"""Scores from nbgrader's gradebook, the table an instructor reads, per-part statistics and the exports (nbgrader's
grades.csv, the per-cell breakdown, the LMS file), each of every student: the gradebook's and submitted/'s.

A cell may have no score yet: a written answer nobody has graded by hand, or a test that needs a GPU on a CPU
runner. Such a cell is neither 0 nor counted in a maximum; the exports leave it empty and name it.

Test cells whose grade id begins with `extra_` grade this project's additions to the course (stricter inputs, more
options); their points are counted apart from the course's, so that an instructor can weigh or drop them."""
import csv
import io
import os
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry


@dataclass
class PartScore:
    auto: float  # points from autograded test cells (those not run left out)
    auto_max: float
    written_max: float  # points of manually graded answers
    written: float  # points given to written answers so far
    failed: list  # grade ids of the test cells that lost points
    tampering: dict = field(default_factory=dict)  # grade id -> what the hidden test's probe found changed
    not_run: list = field(default_factory=list)  # grade ids of tests that need a GPU, on a CPU runner
    not_run_max: float = 0.0  # their points: neither passed nor failed
    extra: float = 0.0  # of `auto`: the points of the project's additions (`extra_` cells)
    extra_max: float = 0.0
    cells: dict = field(default_factory=dict)  # test cell grade id -> score (None: not run)
    answers: dict = field(default_factory=dict)  # written answer grade id -> score (None: to grade by hand)
    pending_max: float = 0.0  # points of the written answers still to grade by hand

    @property
    def course(self) -> float:
        "Autograded points of the course's own exercises."
        return self.auto - self.extra

    @property
    def course_max(self) -> float:
        return self.auto_max - self.extra_max

    @property
    def pending(self) -> list:
        "Grade ids of the written answers still to grade by hand."
        return [gid for gid, score in self.answers.items() if score is None]

    @property
    def total(self) -> float:
        "Every point given so far: autograded and by hand."
        return self.auto + self.written

    @property
    def total_max(self) -> float:
        "The points of what has been graded so far (tests not run and answers still to grade left out)."
        return self.auto_max + self.written_max - self.pending_max


EXTRA_PREFIX = "extra_"


def is_extra(grade_id: str) -> bool:
    "Whether a test cell grades one of the project's additions rather than the course's contract."
    return grade_id.startswith(EXTRA_PREFIX)


def waiting(grade) -> bool:
    """Whether nbgrader holds no score for this cell yet: a written answer nobody graded by hand, or a test not run
    (grader/preprocessors.py: RecordNotRun). A blank answer is not waiting: nbgrader scores it 0 itself."""
    return grade.needs_manual_grade and grade.auto_score is None and grade.manual_score is None


def verdicts(course, student, part) -> dict:
    "grade id -> the hidden test's verdict, as grading recorded it in the autograded notebook (grader/judging.py)."
    path = course.root / "autograded" / student / course.settings.assignment_id / f"{part}.ipynb"
    if not path.exists():
        return {}
    return dict(nbformat.read(path, as_version=4).metadata.get("dlcourse", {}).get("verdicts", {}))


def all_students(course) -> list:
    "Every student the gradebook knows and every one with a folder in submitted/, sorted."
    known = set(course.submitted_students())
    if course.gradebook_path.exists():
        with course.gradebook() as gb:
            known |= {st.id for st in gb.students}
    return sorted(known)


def scores(course, students=None) -> dict:
    """student -> part -> PartScore (None for a part that was not autograded), for `students` or, by default, every
    student of `all_students`: one never autograded has None in every part."""
    s = course.settings
    students = all_students(course) if students is None else students
    table = {student: dict.fromkeys(s.parts) for student in students}
    if not course.gradebook_path.exists():
        return table
    with course.gradebook() as gb:
        for student in students:
            for part in s.parts:
                try:
                    nb = gb.find_submission_notebook(part, s.assignment_id, student)
                except MissingEntry:
                    continue
                table[student][part] = part_score(nb.grades, verdicts(course, student, part))
    return table


def part_score(grades, judged) -> PartScore:
    "One notebook's PartScore from its nbgrader grades and the verdicts its hidden tests got."
    code = [g for g in grades if g.cell_type == "code"]
    text = [g for g in grades if g.cell_type == "markdown"]
    not_run = [g for g in code if waiting(g)]
    run = [g for g in code if not waiting(g)]
    extra = [g for g in run if is_extra(g.name)]
    graded_text = [g for g in text if not waiting(g)]
    return PartScore(
        auto=sum(g.score for g in run), auto_max=sum(g.max_score for g in run),
        written_max=sum(g.max_score for g in text), written=sum(g.score for g in graded_text),
        failed=[g.name for g in run if g.score < g.max_score],
        tampering={gid: v["tampering"] for gid, v in judged.items() if v.get("tampering")},
        not_run=[g.name for g in not_run], not_run_max=sum(g.max_score for g in not_run),
        extra=sum(g.score for g in extra), extra_max=sum(g.max_score for g in extra),
        cells={g.name: None if waiting(g) else g.score for g in code},
        answers={g.name: None if waiting(g) else g.score for g in text},
        pending_max=sum(g.max_score for g in text if waiting(g)))


def missing_reason(course, student) -> str:
    return "submitted, not autograded" if course.submitted(student).is_dir() else "no submission"


def format_table(table, parts, course=None) -> str:
    """A plain-text table: one row per student, the course's autograded points per part, the points of the
    project's additions (`extra_` cells), the written answers graded so far, the total so far and what is left to
    grade by hand; then what failed. A student with no autograded notebook is listed as missing."""
    name_w = max([len("student")] + [len(s) for s in table])
    part_w = max([12] + [len(p) for p in parts])
    header = f"{'student':<{name_w}}  " + "  ".join(f"{p:>{part_w}}" for p in parts) + "  " + \
             f"{'additions':>10}  {'written':>10}  {'total':>12}  to grade by hand"
    lines = [header, "-" * len(header)]
    details, tampering, not_run = [], [], []
    for student, row in table.items():
        graded = [sc for sc in row.values() if sc is not None]
        if not graded:
            why = missing_reason(course, student) if course else "not autograded"
            lines.append(f"{student:<{name_w}}  missing ({why})")
            continue
        cells = []
        for part in parts:
            sc = row.get(part)
            if sc is None:
                cells.append(f"{'not graded':>{part_w}}")
                continue
            cells.append(f"{f'{sc.course:g} / {sc.course_max:g}':>{part_w}}")
            if sc.failed:
                details.append(f"  {student}, {part}: {', '.join(sc.failed)}")
            tampering += [f"  {student}, {part}, {gid}: {'; '.join(found)}" for gid, found in sc.tampering.items()]
            if sc.not_run:
                not_run.append(f"  {student}, {part}: {', '.join(sc.not_run)} ({sc.not_run_max:g} points)")
        sums = {k: sum(getattr(sc, k) for sc in graded)
                for k in ("extra", "extra_max", "written", "written_max", "pending_max", "total", "total_max")}
        pending = [gid for sc in graded for gid in sc.pending]
        by_hand = f"{sums['pending_max']:g} points ({len(pending)} answer{'s' * (len(pending) > 1)})" \
            if pending else "none"
        extra = f"{sums['extra']:g} / {sums['extra_max']:g}"
        written = f"{sums['written']:g} / {sums['written_max'] - sums['pending_max']:g}"
        total = f"{sums['total']:g} / {sums['total_max']:g}"
        lines.append(f"{student:<{name_w}}  " + "  ".join(cells) +
                     f"  {extra:>10}  {written:>10}  {total:>12}  {by_hand}")
    if details:
        lines += ["", "Test cells that lost points:"] + details
    if tampering:
        lines += ["", "Tampering detected (those test cells score 0):"] + tampering
    if not_run:
        lines += ["", "Not run: no GPU (neither passed nor failed; grade them with device = cuda):"] + not_run
    return "\n".join(lines)


def part_stats(table, parts) -> str:
    "Per part, over the students graded: mean and median of the autograded points, and how many got full marks."
    lines = [f"{'part':<20} {'graded':>6} {'mean':>8} {'median':>8} {'max':>6} {'full marks':>10}"]
    for part in parts:
        got = [row[part] for row in table.values() if row.get(part) is not None]
        if not got:
            lines.append(f"{part:<20} {0:>6}")
            continue
        pts = [sc.auto for sc in got]
        full = sum(sc.auto == sc.auto_max for sc in got)
        lines.append(f"{part:<20} {len(got):>6} {statistics.mean(pts):>8.2f} {statistics.median(pts):>8g} "
                     f"{got[0].auto_max:>6g} {full:>10}")
    return "\n".join(lines)


def write_atomic(path: Path, text: str):
    "Write `text` to `path` so that a reader sees the old file or the new one, never half of one."
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def grade_cells(course) -> dict:
    "part -> (its test cells' grade ids, its written answers' grade ids), as the gradebook lists them."
    with course.gradebook() as gb:
        try:
            notebooks = {nb.name: nb for nb in gb.find_assignment(course.settings.assignment_id).notebooks}
        except MissingEntry:  # no student version built yet: no cells
            notebooks = {}
        return {part: tuple([g.name for g in notebooks[part].grade_cells if g.cell_type == kind]
                            for kind in ("code", "markdown")) if part in notebooks else ([], [])
                for part in course.settings.parts}


def number(x) -> str:
    "A CSV cell: the points, or empty where there are none yet."
    return "" if x is None else f"{x:g}"


def write_csv(path: Path, rows) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    write_atomic(path, out.getvalue())
    return Path(path)


def write_breakdown(course, path: Path, table=None) -> Path:
    """One row per student of the whole gradebook (and of submitted/), one column per test cell and per written
    answer (`<part>:<grade id>`), per part its course points (`<part>`), the points of the project's additions
    (`<part>:additions`, the `extra_` cells) and of its written answers (`<part>:written`); then the totals so far,
    the points graded so far (`max`), the points still to grade by hand and those not run (no GPU), and a status:
    graded, to grade by hand, or missing (never autograded). Empty cells: not graded yet, or not run."""
    table = scores(course) if table is None else table
    cells = grade_cells(course)
    header = ["student", "status"]
    for part in course.settings.parts:
        header += [f"{part}:{c}" for c in cells[part][0] + cells[part][1]]
        header += [part, f"{part}:additions", f"{part}:written"]
    header += ["course", "additions", "written", "total", "max", "to_grade_by_hand", "not_run"]
    rows = [header]
    for student, parts in table.items():
        graded = [sc for sc in parts.values() if sc is not None]
        status = "missing" if not graded else "to grade by hand" if any(sc.pending for sc in graded) else "graded"
        row = [student, status]
        for part in course.settings.parts:
            code, text = cells[part]
            sc = parts[part]
            if sc is None:
                row += [""] * (len(code) + len(text) + 3)
                continue
            row += [number(sc.cells.get(c)) for c in code] + [number(sc.answers.get(c)) for c in text]
            row += [number(sc.course), number(sc.extra), number(sc.written)]
        sums = [sum(getattr(sc, k) for sc in graded) if graded else None
                for k in ("course", "extra", "written", "total", "total_max", "pending_max", "not_run_max")]
        rows.append(row + [number(v) for v in sums])
    return write_csv(path, rows)


# The LMS file follows the gradebook CSV that Canvas exports and imports: the columns Student, ID, SIS User ID,
# SIS Login ID and Section identify the student (Canvas matches on the first ID it finds; here the nbgrader id is
# the SIS Login ID), and every further column is a grade item. Moodle's CSV grade import takes the same file: map
# "SIS Login ID" to the username (or ID number) and each grade column to a grade item. Empty: nothing graded yet.
LMS_ID_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def write_lms(course, path: Path, table=None) -> Path:
    """A CSV for an LMS gradebook import: one row per student, the total graded so far, then each part's points
    (autograded, additions and written answers together). A student never autograded gets empty cells, which the
    import leaves alone, rather than a 0."""
    table = scores(course) if table is None else table
    aid, parts = course.settings.assignment_id, course.settings.parts
    names = {}
    if course.gradebook_path.exists():
        with course.gradebook() as gb:
            names = {st.id: (f"{st.last_name}, {st.first_name}" if st.last_name else st.id, st.lms_user_id or "")
                     for st in gb.students}
    rows = [LMS_ID_COLUMNS + [f"{aid} total"] + [f"{aid} {part}" for part in parts]]
    for student, row in table.items():
        name, lms_id = names.get(student, (student, ""))
        graded = [sc for sc in row.values() if sc is not None]
        total = sum(sc.total for sc in graded) if graded else None
        rows.append([name, "", lms_id, student, "", number(total)] +
                    [number(None if row[part] is None else row[part].total) for part in parts])
    return write_csv(path, rows)


def write_exports(course, table=None) -> list:
    """Every export, each from the whole gradebook: nbgrader's grades.csv, grades_by_part.csv and the LMS file
    grades_lms.csv, in the course folder."""
    table = scores(course) if table is None else table
    return [course.export_grades(), write_breakdown(course, course.root / "grades_by_part.csv", table),
            write_lms(course, course.root / "grades_lms.csv", table)]
