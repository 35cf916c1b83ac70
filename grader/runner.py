"""Runners autograde submissions. Each one offers `grade(students) -> {student: error or None}`.

`LocalRunner` grades one submission after another with the instructor's rights; `ParallelRunner` grades several
at a time; `SandboxRunner` (the default) grades several at a time, each kernel inside bubblewrap (grader/sandbox.py).
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm.auto import tqdm

import dlcourse
from dlcourse.datasets import ENV_VAR as CIFAR10_VAR, cifar10_sample, find_cifar10
from dlcourse.plot import STATIC_PLOTS_VAR
from grader.course import Course, CourseError
from grader.edition import REFERENCE_PACKAGE, build_student_package, grading_package
from grader.judging import INTEGRITY_CHECK, WARNINGS_TO_STDOUT
from grader.sandbox import CONFIG_VAR, KERNEL_NAME, SandboxConfig, bwrap_available, write_kernel_spec


def grading_ipython_dir(course: Course) -> Path:
    "An IPython directory for the grading kernels, with the startup files: warnings to stdout, the integrity check."
    ipython_dir = course.root / ".ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-warnings-to-stdout.py").write_text(WARNINGS_TO_STDOUT)
    (startup / "01-integrity.py").write_text(INTEGRITY_CHECK)
    return ipython_dir


class LocalRunner:
    "Autogrades with `nbgrader autograde`, one submission at a time, on this machine."

    def __init__(self, course: Course):
        self.course = course
        s = course.settings
        self.timeout = s.notebook_timeout * len(s.parts)
        self.env = {STATIC_PLOTS_VAR: "1",  # nobody can move a slider in an autograded notebook
                    "IPYTHONDIR": str(grading_ipython_dir(course))}

    def grade_one(self, student: str, *args):
        "Autograde one submission (extra nbgrader `args`, e.g. another gradebook); the error text, or None."
        return self.autograde(student, self.env, *args)

    def close(self):
        "Remove what the runner set up for its kernels."

    def autograde(self, student: str, env: dict, *args):
        try:
            self.course.nbgrader("autograde", self.course.settings.assignment_id, f"--student={student}",
                                 "--force", "--create", *args, timeout=self.timeout, env=env)
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


class SandboxRunner(ParallelRunner):
    """Autogrades `workers` submissions at a time, each notebook's kernel inside bubblewrap (grader/sandbox.py):
    no network, none of the course's files but the submission's own copy, limits on memory, processes, CPU time
    and file size, and every process it started killed when its kernel ends."""

    def __init__(self, course: Course):
        super().__init__(course)
        reason = bwrap_available()
        if reason:
            raise CourseError(f"settings.ini: runner = sandbox, but {reason}. Install it, or set runner = parallel "
                              "(or local) to grade without a sandbox, knowing that submissions then run with your "
                              "rights and can read the gradebook.")
        self.session = Path(tempfile.mkdtemp(prefix="dlcourse-grading-"))
        s = course.settings
        # What every kernel reads: the start-up file and the decoded data, copied where no secret lies beside them
        ipython = shutil.copytree(self.env["IPYTHONDIR"], self.session / "ipython")
        cache = self.session / "cache"
        self.read_only = [str(cache)]
        # the reference package is replaced by each submission's own: helpers real, exercises the student's
        self.package_template = build_student_package(course, self.session / "package", package=REFERENCE_PACKAGE)
        cifar10 = os.environ.get(CIFAR10_VAR)
        if cifar10:
            self.read_only.append(str(Path(cifar10).resolve()))
        warm_cache(cache)
        write_kernel_spec(self.session / "jupyter")
        self.env = {**self.env, "IPYTHONDIR": str(ipython), "DLCOURSE_CACHE": str(cache),
                    "JUPYTER_PATH": str(self.session / "jupyter")}
        self.limits = dict(memory_bytes=int(s.memory_limit_gb * 2 ** 30), max_processes=s.max_processes,
                           cpu_seconds=s.notebook_timeout, file_bytes=int(s.max_file_mb * 2 ** 20))

    def grade_one(self, student: str, *args):
        box = Path(tempfile.mkdtemp(prefix=f"{student}-", dir=self.session))
        try:
            for folder in ("runtime", "sockets", "scratch"):
                (box / folder).mkdir()
            package = grading_package(self.package_template, self.course.submitted(student), box / "package")
            SandboxConfig(scratch=str(box / "scratch"), sockets=str(box / "sockets"), read_only=self.read_only,
                          replaced=[(str(package), str(Path(dlcourse.__file__).parent))],
                          **self.limits).save(box / "sandbox.json")
            env = {**self.env, CONFIG_VAR: str(box / "sandbox.json"), "JUPYTER_RUNTIME_DIR": str(box / "runtime")}
            return self.autograde(student, env, f"--Execute.kernel_name={KERNEL_NAME}", "--KernelManager.transport=ipc",
                                  f"--KernelManager.ip={box / 'sockets' / 'kernel'}", *args)
        finally:
            shutil.rmtree(box, ignore_errors=True)

    def grade(self, students, progress=True):
        try:
            return super().grade(students, progress)
        finally:
            self.close()

    def close(self):
        shutil.rmtree(self.session, ignore_errors=True)


def warm_cache(folder: Path):
    "Decode the data the notebooks read into `folder` here, so that a sandboxed kernel finds it cached, read-only."
    old = os.environ.get("DLCOURSE_CACHE")
    os.environ["DLCOURSE_CACHE"] = str(folder)
    try:
        for train in (True, False):
            find_cifar10(train=train, verbose=False)
            cifar10_sample(train=train)
    finally:
        os.environ.pop("DLCOURSE_CACHE") if old is None else os.environ.__setitem__("DLCOURSE_CACHE", old)


RUNNERS = {"local": LocalRunner, "parallel": ParallelRunner, "sandbox": SandboxRunner}


def make_runner(course: Course):
    name = course.settings.runner
    if name not in RUNNERS:
        raise CourseError(f"settings.ini: runner = {name!r} is unknown; choose one of {sorted(RUNNERS)}")
    return RUNNERS[name](course)
