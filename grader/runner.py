"""Runners autograde submissions. Each one offers `grade(students) -> {student: error or None}`.

`LocalRunner` grades one submission after another in this Python environment; `ParallelRunner`
grades several at a time. A sandboxed runner (one container per submission) plugs in beside them
under another name in `RUNNERS`.
"""
import os
import subprocess
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm.auto import tqdm

from dlcourse.plot import STATIC_PLOTS_VAR
from grader.course import Course, CourseError


# nbgrader gives 0 to a test cell that writes to stderr, and a harmless library warning would do that to correct
# code. The grading kernels run this at start-up (an IPython startup file), so warnings are printed to stdout.
WARNINGS_TO_STDOUT = """\
import sys
import warnings

def _show_on_stdout(message, category, filename, lineno, file=None, line=None):
    sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))

warnings.showwarning = _show_on_stdout
"""


def grading_ipython_dir(course: Course) -> Path:
    "An IPython directory for the grading kernels, with the startup file above."
    ipython_dir = course.root / ".ipython"
    startup = ipython_dir / "profile_default" / "startup" / "00-warnings-to-stdout.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    startup.write_text(WARNINGS_TO_STDOUT)
    return ipython_dir


class LocalRunner:
    "Autogrades with `nbgrader autograde`, one submission at a time, on this machine."

    def __init__(self, course: Course):
        self.course = course
        s = course.settings
        self.timeout = s.notebook_timeout * len(s.parts)
        self.env = {STATIC_PLOTS_VAR: "1",  # nobody can move a slider in an autograded notebook
                    "IPYTHONDIR": str(grading_ipython_dir(course))}

    def grade_one(self, student: str):
        "Autograde one submission; the error text, or None when nbgrader finished."
        try:
            self.course.nbgrader("autograde", self.course.settings.assignment_id, f"--student={student}",
                                 "--force", "--create", timeout=self.timeout, env=self.env)
        except subprocess.TimeoutExpired:
            return f"autograding took longer than {self.timeout} s (settings.ini: notebook_timeout)"
        except CourseError as e:
            return str(e)
        return None

    def grade(self, students, progress=True):
        results = {}
        with tqdm(students, desc="autograding", unit="submission", disable=not progress) as bar:
            for student in bar:
                bar.set_postfix_str(student)
                results[student] = self.grade_one(student)
        return results


class ParallelRunner(LocalRunner):
    """Autogrades `workers` submissions at a time on this machine, each kernel on its share of the cores.

    nbgrader's gradebook is SQLite: concurrent autograde processes only write to it briefly, at the start and
    at the end of a submission, and SQLite serialises those writes."""

    def __init__(self, course: Course):
        super().__init__(course)
        self.workers = max(1, course.settings.workers)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        self.env = {**self.env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def grade(self, students, progress=True):
        results = {}
        with ThreadPoolExecutor(self.workers) as pool, \
                tqdm(total=len(students), desc="autograding", unit="submission", disable=not progress) as bar:
            futures = {pool.submit(self.grade_one, student): student for student in students}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
        return {student: results[student] for student in students}


RUNNERS = {"local": LocalRunner, "parallel": ParallelRunner}


def make_runner(course: Course):
    name = course.settings.runner
    if name not in RUNNERS:
        raise CourseError(f"settings.ini: runner = {name!r} is unknown; choose one of {sorted(RUNNERS)}")
    return RUNNERS[name](course)
