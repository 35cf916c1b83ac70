"""`make demo-course N=100`: a whole course graded, from N submissions generated from the samples.

The submissions mix the reference, blank ones, every sample bug in the notebooks graded, and a few hostile ones
(grader/samples.py `HOSTILE`). The course is graded (here with `workers` workers, or on Slurm), then a tenth of the
students with a bug resubmit the reference and the course is graded again: only the resubmissions are. It prints
the table, the per-part statistics and the times, and writes both CSVs. Rerun after an interruption, it resumes.
"""
import dataclasses
import random
import shutil
import time

from grader.batch import Batch, fingerprint
import nbformat

from grader.course import Course, cells_by_id, load_settings
from grader.report import format_table, part_stats, scores, write_exports
from grader.samples import HOSTILE, SAMPLES, build_hostile, build_submission, edited_parts


def plan_submissions(course, n: int, seed=0) -> dict:
    "student id -> (sample name, hostile payload or None), the same for the same n and parts."
    rng = random.Random(seed)
    bugs = [name for name, s in SAMPLES.items() if s.edits and edited_parts(course, s)]
    hostile = list(HOSTILE) if n >= 20 else []
    kinds = ["reference"] * 3 + ["blank"] + bugs
    plan = {}
    for i in range(n):
        student = f"student{i + 1:03d}"
        plan[student] = (rng.choice(kinds), None)
    for k, payload in enumerate(hostile):  # a few, spread over the course
        plan[f"student{(k + 1) * n // (len(hostile) + 1):03d}"] = (HOSTILE[payload][0], payload)
    return plan


def write_submission(course, student, sample, payload):
    shutil.rmtree(course.submitted(student), ignore_errors=True)
    if payload:
        build_hostile(course, student, payload, course.settings.parts[0])
    else:  # the sample's edits in the notebooks graded (alt_conventions spans several parts)
        ids = {gid for part in course.settings.parts
               for gid in cells_by_id(nbformat.read(course.source / f"{part}.ipynb", as_version=4))}
        s = SAMPLES[sample]
        build_submission(course, dataclasses.replace(s, name=student, edits=tuple(e for e in s.edits if e[0] in ids)))


def demo_course(n, parts, root, slurm=False) -> int:
    start = time.time()
    settings = load_settings()
    settings = dataclasses.replace(settings, parts=tuple(parts or settings.parts))
    root.mkdir(parents=True, exist_ok=True)
    course = Course(settings, root=root)
    print(f"1/5 the student version of {len(settings.parts)} notebook(s) in {root}")
    built = course.root / "source.fingerprint"
    course.write_config()
    course.build_source()
    if not course.release.exists() or not built.exists() or built.read_text() != fingerprint(course.source):
        shutil.rmtree(course.root / "submitted", ignore_errors=True)
        course.gradebook_path.unlink(missing_ok=True)  # a new assignment: nbgrader keeps one with submissions fixed
        course.student_version()
        built.write_text(fingerprint(course.source))
    plan = plan_submissions(course, n)
    print(f"2/5 writing {n} submissions (" + ", ".join(f"{k}: {v}" for k, v in sorted(count(plan).items())) + ")")
    for student, (sample, payload) in plan.items():
        write_submission(course, student, sample, payload)
    batch, students = Batch(course), list(plan)
    grade = (lambda: batch.grade_on_slurm(students)) if slurm else (lambda: batch.grade(students))
    print(f"3/5 grading them{' on Slurm' if slurm else ''}")
    t = time.time()
    errors = grade()
    first = time.time() - t
    resubmit = [st for st, (sample, payload) in plan.items() if sample not in ("reference", "blank") and not payload]
    resubmit = resubmit[::10]
    print(f"\n4/5 {len(resubmit)} students resubmit the reference; grading again (only they are graded)")
    for st in resubmit:
        write_submission(course, st, "reference", None)
    t = time.time()
    errors = grade()
    second = time.time() - t
    print("\n5/5 the course's grades\n")
    table = scores(course)
    print(format_table(table, settings.parts, course))
    print("\nPer part (autograded points):")
    print(part_stats(table, settings.parts))
    grades, by_part, lms = write_exports(course, table)
    print(f"\nnbgrader export: {grades}\nper-part breakdown: {by_part}\nfor an LMS import: {lms}")
    failed = [st for st, err in errors.items() if err]
    for st in failed:
        print(f"{st}: autograding failed: {errors[st]}")
    print(f"\n{n} submissions graded in {first:.0f} s ({first / n:.1f} s each), {len(resubmit)} resubmissions in "
          f"{second:.0f} s; {time.time() - start:.0f} s in all")
    return 1 if failed else 0


def count(plan):
    out = {}
    for sample, payload in plan.values():
        key = f"hostile {payload}" if payload else ("bug" if sample not in ("reference", "blank") else sample)
        out[key] = out.get(key, 0) + 1
    return out
