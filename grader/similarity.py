"""Which students' exercises look copied from each other: `python -m grader similarity`.

Every exercise (a code cell nbgrader marks as a solution) is compared between every pair of students who wrote it,
the code the release gives for that cell (signatures, docstrings, stubs) excluded as boilerplate. The pairs are ranked
per exercise and overall, into `<course root>/similarity/`: `similarity.csv`, and `index.html`, whose rows link to
the two submissions of an exercise side by side with the matching regions highlighted. It ranks; a person decides.

Library: copydetect rather than compare50. On dropout, cross_entropy and momentum_sgd (2-4 independent
variants each, plus a verbatim and a renamed-and-reordered copy) copydetect ranked both copies above every independent
pair in all three (renamed 1.00/0.93/0.79 vs. best independent 0.73/0.79/0.65); compare50 (k=25 tokens, raw counts that
vary with the hash seed) did in dropout only. copydetect fingerprints strings in process and takes boilerplate;
compare50 wants files, a process pool, attrs<21 (nbgrader's jsonschema needs >=22.2) and GPL-3, though it is the more
recently released (copydetect 0.5.0 dates from 2024).
"""
import csv
import html
import io
import itertools
import os
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat
import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap
from nbgrader.utils import is_solution
from tqdm import tqdm

from grader.course import CourseError
from grader.report import write_atomic

# copydetect's defaults: a match shorter than 25 characters of tokenized code (names -> V, strings -> S, comments and
# whitespace dropped) is noise. Guarantee = noise makes the winnowing window 1: every k-gram is a fingerprint, so a
# score does not depend on Python's hash seed (a wider window picks fingerprints by hash value, which varies per run).
NOISE = 25
PAGES_PER_EXERCISE = 20  # pages (and index rows) for the most similar pairs of each exercise; the CSV has them all
OVERALL_ROWS = 50


@dataclass
class Result:
    "What `similarity` found: pair rows, the ranking overall, who was left out and why, where the report is."
    rows: list  # (student_a, student_b, part, exercise, score), every pair compared
    overall: list  # (student_a, student_b, total, best score, its (part, exercise), exercises compared), ranked
    skipped: dict = field(default_factory=dict)  # reason -> {(part, exercise): [students]}; exercise "": all
    medians: dict = field(default_factory=dict)  # (part, exercise) -> the median score of its pairs
    folder: Path = None


def exercise_cells(nb) -> dict:
    "grade_id -> code of each exercise (a solution code cell) of a notebook."
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.cell_type == "code" and is_solution(c)}


def significant_lines(code: str) -> list:
    return [line.strip() for line in code.splitlines() if line.strip()]


def fingerprint(code: str, boilerplate=None) -> CodeFingerprint:
    return CodeFingerprint("cell.py", NOISE, 1, boilerplate, True, "python", fp=io.StringIO(code))


def compare(fp_a, fp_b) -> float:
    "The share of the two cells' own code (given code excluded) that the other holds too: the larger of the two shares."
    _, (share_a, share_b), _ = compare_files(fp_a, fp_b)
    return float(max(share_a, share_b))


def collect(course, parts, students):
    """(part, exercise) -> (its given code, {student: code}), and who is left out: (part, exercise) -> students, for
    a cell still the stub, and for a notebook not handed in."""
    exercises, stub, missing = {}, {}, {}
    for part in parts:
        given = exercise_cells(nbformat.read(course.release / f"{part}.ipynb", as_version=4))
        for gid, code in given.items():
            exercises[(part, gid)] = (code, {})
        for student in students:
            path = course.submitted(student) / f"{part}.ipynb"
            if not path.exists():
                missing.setdefault((part, ""), []).append(student)
                continue
            cells = exercise_cells(nbformat.read(path, as_version=4))
            for gid, code in given.items():
                if gid not in cells:
                    missing.setdefault((part, gid), []).append(student)
                elif significant_lines(cells[gid]) == significant_lines(code):
                    stub.setdefault((part, gid), []).append(student)
                else:
                    exercises[(part, gid)][1][student] = cells[gid]
    return exercises, {"still the stub": stub, "not handed in": missing}


def similarity(course, parts=None, progress=True) -> Result:
    "Compare every pair of students on every exercise of `parts` (default: all), write the report, return it."
    parts = list(course.settings.parts if parts is None else parts)
    unknown = [p for p in parts if p not in course.settings.parts]
    if unknown:
        raise CourseError(f"unknown parts {unknown}; settings.ini has {' '.join(course.settings.parts)}")
    if not course.release.exists():
        raise CourseError(f"no student version in {course.release}: build it with `python -m grader student`")
    students = course.submitted_students()
    if len(students) < 2:
        raise CourseError(f"fewer than two submissions in {course.root / 'submitted'}/: nothing to compare")
    exercises, skipped = collect(course, parts, students)

    fingerprints, too_short = {}, {}
    for key, (given, codes) in exercises.items():
        boilerplate = np.unique(np.array(list(fingerprint(given).hashes), dtype=np.int64))
        fingerprints[key] = {}
        for student, code in codes.items():
            fp = fingerprint(code, boilerplate)
            if fp.token_coverage:
                fingerprints[key][student] = fp
            else:  # nothing of its own longer than the noise threshold: no score would mean anything
                too_short.setdefault(key, []).append(student)
    skipped["too short to compare (nothing beyond the given code)"] = too_short

    rows = []
    total = sum(len(fps) * (len(fps) - 1) // 2 for fps in fingerprints.values())
    with tqdm(total=total, desc="comparing", unit="pair", disable=not progress or total < 1000) as bar:
        for (part, gid), fps in fingerprints.items():
            for a, b in itertools.combinations(sorted(fps), 2):
                rows.append((a, b, part, gid, compare(fps[a], fps[b])))
                bar.update()
    order = {key: i for i, key in enumerate(exercises)}  # the notebooks' order, then the cells'
    rows.sort(key=lambda r: (order[r[2:4]], -r[4], r[0], r[1]))

    # Overall, a pair counts what is unusual: per exercise, how far its score lies above the median of that exercise's
    # pairs (an exercise that every student answers alike adds nothing), summed over the exercises both wrote.
    medians = {key: statistics.median(r[4] for r in group) for key, group in itertools.groupby(rows, lambda r: r[2:4])}
    pairs = {}
    for a, b, part, gid, score in rows:
        total, best, n = pairs.get((a, b), (0.0, None, 0))
        excess = max(0.0, score - medians[(part, gid)])
        if best is None or (excess, score) > best[:2]:
            best = (excess, score, (part, gid))
        pairs[(a, b)] = (total + excess, best, n + 1)
    overall = sorted(((a, b, total, best[1], best[2], n) for (a, b), (total, best, n) in pairs.items()),
                     key=lambda r: (-r[2], -r[3], r[0], r[1]))
    result = Result(rows, overall, skipped, medians)
    result.folder = write_report(course, result, fingerprints)
    return result


def page_name(part, gid, a, b) -> str:
    return f"{part}.{gid}.{a}.{b}.html"


PAGE_STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
pre { font-size: 0.85em; white-space: pre-wrap; margin: 0; }
.highlight-red { background-color: #f2b6b6; }
.highlight-green { background-color: #b6f2b6; }
</style>"""


def pair_page(part, gid, a, b, fp_a, fp_b, score) -> str:
    "Both cells side by side, the regions copydetect matched highlighted (copydetect's own highlighter and colours)."
    _, _, (slices_a, slices_b) = compare_files(fp_a, fp_b)
    code = []
    for fp, slices, colour in ((fp_a, slices_a, "red"), (fp_b, slices_b, "green")):
        if slices.shape[0] and slices.shape[-1]:
            text, _ = highlight_overlap(fp.raw_code, slices, f"<span class='highlight-{colour}'>", "</span>",
                                        escape_html=True)
        else:
            text = html.escape(fp.raw_code)
        code.append(text)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(f'{gid}: {a} / {b}')}</title>"
            f"{PAGE_STYLE}</head><body><p><a href='../index.html'>all pairs</a></p>"
            f"<h1>{html.escape(gid)} ({html.escape(part)}): similarity {score:.2f}</h1>"
            "<p>Highlighted: code both cells share, the code the release gives excluded, names and strings "
            "normalised (a renamed variable still matches).</p>"
            f"<table><tr><th>{html.escape(a)}</th><th>{html.escape(b)}</th></tr>"
            f"<tr><td><pre>{code[0]}</pre></td><td><pre>{code[1]}</pre></td></tr></table></body></html>")


def link(text, part, gid, a, b) -> str:
    return f"<a href='pairs/{quote(page_name(part, gid, a, b))}'>{html.escape(text)}</a>"


def write_report(course, result, fingerprints) -> Path:
    "similarity.csv, index.html and pairs/ (replaced whole) in `<course root>/similarity/`."
    out = course.root / "similarity"
    out.mkdir(parents=True, exist_ok=True)
    rank = {(a, b): i for i, (a, b, *_) in enumerate(result.overall, 1)}
    overall = {(a, b): total for a, b, total, *_ in result.overall}

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["overall_rank", "student_a", "student_b", "overall", "part", "exercise", "score",
                     "exercise_median"])
    for a, b, part, gid, score in sorted(result.rows, key=lambda r: (rank[r[:2]], -r[4], r[2], r[3])):
        writer.writerow([rank[(a, b)], a, b, f"{overall[(a, b)]:.4f}", part, gid, f"{score:.4f}",
                         f"{result.medians[(part, gid)]:.4f}"])

    pages, per_exercise = {}, []
    by_exercise = {}
    for row in result.rows:
        by_exercise.setdefault(row[2:4], []).append(row)
    for (part, gid), rows in by_exercise.items():
        top = rows[:PAGES_PER_EXERCISE]  # rows are sorted by score within an exercise
        per_exercise.append(((part, gid), top, len(rows)))
        pages.update({(part, gid, a, b): score for a, b, _, _, score in top})
    for a, b, total, best, (part, gid), n in result.overall[:OVERALL_ROWS]:
        pages[(part, gid, a, b)] = best

    # the pages go to a fresh folder that then replaces the old one: no page of an earlier run is left behind
    tmp = out / f".pairs.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for (part, gid, a, b), score in pages.items():
        fps = fingerprints[(part, gid)]
        (tmp / page_name(part, gid, a, b)).write_text(pair_page(part, gid, a, b, fps[a], fps[b], score))
    shutil.rmtree(out / "pairs", ignore_errors=True)
    os.replace(tmp, out / "pairs")

    write_atomic(out / "similarity.csv", buf.getvalue())
    write_atomic(out / "index.html", index_page(course, result, per_exercise))
    return out


def index_page(course, result, per_exercise) -> str:
    e = html.escape
    body = [f"<h1>Similar submissions: {e(course.settings.course_id)} {e(course.settings.assignment_id)}</h1>",
            "<p>Score: the share of one student's own code in an exercise (the given code excluded) that the other's "
            "holds too, names and strings normalised; 1.00 is a copy, renamed or not. Exercises with one natural "
            "answer score high even between students who worked apart, and a copy rewritten by hand can score low: "
            "this ranks pairs to look at, a person decides. All pairs are in <a href='similarity.csv'>similarity.csv"
            "</a>.</p>",
            "<h2>Pairs overall</h2><p>Total: over the exercises both wrote, the sum of how far the pair's score "
            "lies above the exercise's median pair score (an exercise everyone answers alike adds nothing).</p>",
            "<table><tr><th>#</th><th>student a</th><th>student b</th><th>total</th><th>exercises</th>"
            "<th>most similar exercise</th></tr>"]
    for i, (a, b, total, best, (part, gid), n) in enumerate(result.overall[:OVERALL_ROWS], 1):
        body.append(f"<tr><td>{i}</td><td>{e(a)}</td><td>{e(b)}</td><td>{total:.2f}</td><td>{n}</td>"
                    f"<td>{link(f'{gid} {best:.2f}', part, gid, a, b)}</td></tr>")
    body.append("</table>")
    for (part, gid), top, n in per_exercise:
        shown = f", the top {len(top)}" if n > len(top) else ""
        body.append(f"<h2>{e(gid)} <small>({e(part)}, {n} pairs{shown}, median {result.medians[(part, gid)]:.2f})"
                    "</small></h2><table><tr><th>score</th><th>student a</th><th>student b</th></tr>")
        body += [f"<tr><td>{link(f'{score:.2f}', part, gid, a, b)}</td><td>{e(a)}</td><td>{e(b)}</td></tr>"
                 for a, b, _, _, score in top]
        body.append("</table>")
    left_out = [(reason, key, students) for reason, cells in result.skipped.items()
                for key, students in cells.items()]
    if left_out:
        body.append("<h2>Not compared</h2><table><tr><th>exercise</th><th>why</th><th>students</th></tr>")
        body += [f"<tr><td>{e(f'{gid} ({part})' if gid else f'{part} (every exercise)')}</td><td>{e(reason)}</td>"
                 f"<td>{e(', '.join(students))}</td></tr>" for reason, (part, gid), students in left_out]
        body.append("</table>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Similar submissions</title>{PAGE_STYLE}</head>"
            f"<body>{''.join(body)}</body></html>")


def skipped_lines(result, limit=6) -> list:
    "Who was left out of which exercises, and why: one line per reason and student, for the terminal."
    lines = []
    for reason, cells in result.skipped.items():
        by_student = {}
        for (part, gid), students in cells.items():
            for student in students:
                by_student.setdefault(student, []).append(f"{part}/{gid}" if gid else part)
        for student, where in sorted(by_student.items()):
            more = f" and {len(where) - limit} more" if len(where) > limit else ""
            lines.append(f"{student}, {reason}: {', '.join(where[:limit])}{more}")
    return lines


def summary(result, top=10) -> str:
    "Who was left out, then the `top` pairs overall, for the terminal."
    skipped = skipped_lines(result)
    lines = ["not compared:", *(f"  {line}" for line in skipped)] if skipped else []
    lines.append(f"most similar pairs of {len(result.overall)} (total: the scores above each exercise's median, "
                 "summed; the pair's most unusual exercise):")
    lines += [f"  {total:6.2f}  {a} / {b}  ({n} exercises; {gid} {best:.2f})"
              for a, b, total, best, (part, gid), n in result.overall[:top]]
    return "\n".join(lines)
