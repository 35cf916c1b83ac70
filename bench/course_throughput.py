"""Grading a course: plain serial `nbgrader autograde` against ours (grader/batch.py), the same submissions, one run.

    .venv/bin/python bench/course_throughput.py [N] [--runner sandbox|parallel] [--workers 2]

Builds two identical one-notebook courses (Part 1) of N submissions (the reference and `dw_transposed`,
alternating). The baseline grades them with one `nbgrader autograde <assignment>` process into the one gradebook,
its kernels unsandboxed; ours with `Batch.grade`: `workers` workers, each into its own gradebook, kernels in the
sandbox (default), then the merge. Prints seconds per submission, the ratio, and checks that both gave the same
grades.

What bounds the ratio: the cores (2 here, so at most 2x); what ours adds (once per batch: preparing the sandbox's
package template and data; per submission: its own package export and the sandbox around each kernel; the merge),
against what it saves (one grading process per worker, with nbgrader and torch imported once, as the baseline's one
process); and, on a shared machine, the other work on it.
"""
import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.batch import Batch  # noqa: E402
from grader.course import Course, load_settings  # noqa: E402
from grader.report import scores  # noqa: E402
from grader.runner import LocalRunner  # noqa: E402
from grader.samples import SAMPLES, build_submission  # noqa: E402


def make_course(root, n, runner, workers):
    settings = dataclasses.replace(load_settings(), parts=("part1_backprop",), runner=runner, workers=workers)
    Path(root).mkdir(parents=True)
    course = Course(settings, root=root)
    course.student_version()
    students = [f"s{i:03d}" for i in range(n)]
    for i, st in enumerate(students):
        build_submission(course, dataclasses.replace(SAMPLES["reference" if i % 2 == 0 else "dw_transposed"], name=st))
    return course, students


def points(course, students):
    return {st: row["part1_backprop"].auto for st, row in scores(course, students).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", default=6)
    ap.add_argument("--runner", default="sandbox", choices=["sandbox", "parallel"])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ.pop("DLCOURSE_CIFAR10", None)
    with tempfile.TemporaryDirectory() as tmp:
        base, students = make_course(Path(tmp) / "serial", args.n, "local", 1)
        ours, _ = make_course(Path(tmp) / "ours", args.n, args.runner, args.workers)
        env = LocalRunner(base).env  # the grading kernels' start-up (warnings to stdout), static plots
        start = time.perf_counter()
        base.nbgrader("autograde", base.settings.assignment_id, "--create", "--force", env=env)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        errors = Batch(ours).grade(students, progress=False)
        parallel = time.perf_counter() - start
        assert not any(errors.values()), errors
        same = points(base, students) == points(ours, students)
    print(f"Part 1, {args.n} submissions, {os.cpu_count()} cores")
    print(f"  serial nbgrader autograde (1 process, 1 gradebook, no sandbox): {serial:.0f} s, "
          f"{serial / args.n:.1f} s per submission")
    print(f"  ours ({args.workers} workers, runner = {args.runner}, scratch gradebooks + merge): {parallel:.0f} s, "
          f"{parallel / args.n:.1f} s per submission")
    print(f"  ratio serial / ours: {serial / parallel:.2f}x  (same grades: {same})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
