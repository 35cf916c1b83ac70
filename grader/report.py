"""Scores from nbgrader's gradebook, the table an instructor reads, per-part statistics and the breakdown CSV.

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
from nbgrader.api import Gradebook, MissingEntry


@dataclass
class PartScore:
    auto: float  # points from autograded test cells
    auto_max: float
    written_max: float  # points of manually graded answers
    written: float | None  # None until a person has graded them
    failed: list  # grade ids of the test cells that lost points
    tampering: dict = field(default_factory=dict)  # grade id -> what the hidden test's probe found changed
    not_run: list = field(default_factory=list)  # grade ids of tests that need a GPU, on a CPU runner
    not_run_max: float = 0.0  # their points: neither passed nor failed
    extra: float = 0.0  # of `auto`: the points of the project's additions (`extra_` cells)
    extra_max: float = 0.0

    @property
    def course(self) -> float:
        "Autograded points of the course's own exercises."
        return self.auto - self.extra

    @property
    def course_max(self) -> float:
        return self.auto_max - self.extra_max


EXTRA_PREFIX = "extra_"


def is_extra(grade_id: str) -> bool:
    "Whether a test cell grades one of the project's additions rather than the course's contract."
    return grade_id.startswith(EXTRA_PREFIX)


def verdicts(course, student, part) -> dict:
    "grade id -> the hidden test's verdict, as grading recorded it in the autograded notebook (grader/judging.py)."
    path = course.root / "autograded" / student / course.settings.assignment_id / f"{part}.ipynb"
    if not path.exists():
        return {}
    return dict(nbformat.read(path, as_version=4).metadata.get("dlcourse", {}).get("verdicts", {}))


def scores(course, students) -> dict:
    "student -> part -> PartScore (None for a part that was not autograded)."
    s = course.settings
    table = {}
    with Gradebook(f"sqlite:///{course.gradebook_path}", course_id=s.course_id) as gb:
        for student in students:
            table[student] = {}
            for part in s.parts:
                try:
                    nb = gb.find_submission_notebook(part, s.assignment_id, student)
                except MissingEntry:
                    table[student][part] = None
                    continue
                code = [g for g in nb.grades if g.cell_type == "code"]
                text = [g for g in nb.grades if g.cell_type == "markdown"]
                judged = verdicts(course, student, part)
                not_run = [g for g in code if judged.get(g.name, {}).get("not_run")]
                code = [g for g in code if g not in not_run]
                extra = [g for g in code if is_extra(g.name)]
                table[student][part] = PartScore(
                    auto=sum(g.score for g in code), auto_max=sum(g.max_score for g in code),
                    written_max=sum(g.max_score for g in text),
                    written=None if any(g.needs_manual_grade for g in text) else sum(g.score for g in text),
                    failed=[g.name for g in code if g.score < g.max_score],
                    tampering={gid: v["tampering"] for gid, v in judged.items() if v.get("tampering")},
                    not_run=[g.name for g in not_run], not_run_max=sum(g.max_score for g in not_run),
                    extra=sum(g.score for g in extra), extra_max=sum(g.max_score for g in extra))
    return table


def format_table(table, parts) -> str:
    """A plain-text table: one row per student, the course's autograded points per part, the points of the
    project's additions (`extra_` cells), the total, then what failed."""
    name_w = max([len("student")] + [len(s) for s in table])
    part_w = max([12] + [len(p) for p in parts])
    header = f"{'student':<{name_w}}  " + "  ".join(f"{p:>{part_w}}" for p in parts) + "  " + \
             f"{'additions':>10}  {'total':>12}  written answers"
    lines = [header, "-" * len(header)]
    details, tampering, not_run = [], [], []
    for student, row in table.items():
        cells, total, total_max, pending, extra, extra_max = [], 0.0, 0.0, 0.0, 0.0, 0.0
        for part in parts:
            sc = row.get(part)
            if sc is None:
                cells.append(f"{'not graded':>{part_w}}")
                continue
            cells.append(f"{f'{sc.course:g} / {sc.course_max:g}':>{part_w}}")
            total, total_max = total + sc.auto, total_max + sc.auto_max
            extra, extra_max = extra + sc.extra, extra_max + sc.extra_max
            pending += sc.written_max if sc.written is None else 0
            if sc.failed:
                details.append(f"  {student}, {part}: {', '.join(sc.failed)}")
            tampering += [f"  {student}, {part}, {gid}: {'; '.join(found)}" for gid, found in sc.tampering.items()]
            if sc.not_run:
                not_run.append(f"  {student}, {part}: {', '.join(sc.not_run)} ({sc.not_run_max:g} points)")
        written = f"{pending:g} points to grade by hand" if pending else "graded"
        lines.append(f"{student:<{name_w}}  " + "  ".join(cells) + f"  {f'{extra:g} / {extra_max:g}':>10}"
                     f"  {f'{total:g} / {total_max:g}':>12}  {written}")
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


def write_breakdown(course, students, path: Path) -> Path:
    """One row per student, one column per autograded test cell (`<part>:<cell>`), per part its course points
    (`<part>`) and the points of the project's additions (`<part>:additions`, the `extra_` cells), then the totals of
    both and the total: a CSV an LMS can import. Empty cells: not graded, or not run (no GPU)."""
    s = course.settings
    with Gradebook(f"sqlite:///{course.gradebook_path}", course_id=s.course_id) as gb:
        assignment = gb.find_assignment(s.assignment_id)
        cells = {nb.name: [g.name for g in nb.grade_cells if g.cell_type == "code"] for nb in assignment.notebooks}
        header = ["student"]
        for part in s.parts:
            header += [f"{part}:{c}" for c in cells.get(part, [])] + [part, f"{part}:additions"]
        header += ["course", "additions", "total"]
        rows = []
        for student in students:
            row, course_total, extra_total = [student], 0.0, 0.0
            for part in s.parts:
                try:
                    nb = gb.find_submission_notebook(part, s.assignment_id, student)
                except MissingEntry:
                    row += [""] * (len(cells.get(part, [])) + 2)
                    continue
                # a test not run (it needs a GPU, the runner has none) has no score yet: an empty cell
                by_name = {g.name: g.score for g in nb.grades if g.cell_type == "code"
                           if not (g.needs_manual_grade and g.auto_score is None)}
                row += [f"{by_name[c]:g}" if c in by_name else "" for c in cells.get(part, [])]
                extra = sum(v for c, v in by_name.items() if is_extra(c))
                course_points = sum(by_name.values()) - extra
                row += [f"{course_points:g}", f"{extra:g}"]
                course_total, extra_total = course_total + course_points, extra_total + extra
            row += [f"{course_total:g}", f"{extra_total:g}", f"{course_total + extra_total:g}"]
            rows.append(row)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    write_atomic(path, out.getvalue())
    return Path(path)
