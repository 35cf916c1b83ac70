"""What the grading sandbox costs: the same submissions autograded with and without it, in one run.

    .venv/bin/python bench/sandbox_overhead.py [N]

Grades N copies of the reference submission of Part 1 one at a time (workers = 1), first with runner = local
(no sandbox), then with runner = sandbox, and prints seconds per submission and their ratio.
"""
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.course import Course, load_settings  # noqa: E402
from grader.batch import Batch  # noqa: E402
from grader.samples import SAMPLES, build_submission  # noqa: E402


def seconds_per_submission(course, runner, students):
    course = Course(dataclasses.replace(course.settings, runner=runner, workers=1), root=course.root)
    (course.root / "batch" / "ledger.json").unlink(missing_ok=True)  # grade them all again
    start = time.perf_counter()
    errors = Batch(course).grade(students, progress=False)
    assert not any(errors.values()), errors
    return (time.perf_counter() - start) / len(students)


def main(n=3):
    os.environ.pop("DLCOURSE_CIFAR10", None)
    with tempfile.TemporaryDirectory() as root:
        course = Course(dataclasses.replace(load_settings(), parts=("part1_backprop",)), root=root)
        course.student_version()
        build_submission(course, SAMPLES["reference"])
        students = [f"copy{i}" for i in range(n)]
        for st in students:
            shutil.copytree(course.submitted("reference"), course.submitted(st))
        local = seconds_per_submission(course, "local", students)
        sandbox = seconds_per_submission(course, "sandbox", students)
    print(f"Part 1 reference, {n} submissions, one at a time")
    print(f"  no sandbox: {local:.1f} s per submission")
    print(f"  sandbox:    {sandbox:.1f} s per submission")
    print(f"  ratio sandbox / no sandbox: {sandbox / local:.2f} (+{sandbox - local:.1f} s per notebook)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
