"""Runners autograde submissions. Each one offers `grade(students) -> {student: error or None}`.

`LocalRunner` grades one submission after another in this Python environment. A parallel runner
(several workers, each with its own copy of the gradebook, merged afterwards) or a sandboxed one
(one container per submission) plugs in beside it under another name in `RUNNERS`.
"""
import subprocess

from tqdm.auto import tqdm

from grader.course import Course, CourseError


class LocalRunner:
    "Autogrades with `nbgrader autograde`, one submission at a time, on this machine."

    def __init__(self, course: Course):
        self.course = course
        s = course.settings
        self.timeout = s.notebook_timeout * len(s.parts)

    def grade_one(self, student: str):
        "Autograde one submission; the error text, or None when nbgrader finished."
        try:
            self.course.nbgrader("autograde", self.course.settings.assignment_id, f"--student={student}",
                                 "--force", "--create", timeout=self.timeout)
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


RUNNERS = {"local": LocalRunner}


def make_runner(course: Course):
    name = course.settings.runner
    if name not in RUNNERS:
        raise CourseError(f"settings.ini: runner = {name!r} is unknown; choose one of {sorted(RUNNERS)}")
    return RUNNERS[name](course)
