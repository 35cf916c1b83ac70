"""Runners autograde one submission at a time in the calling process: `grade_one(student, config) -> error or None`.

`LocalRunner` runs the kernels with the instructor's rights; `ParallelRunner` is the same, for `workers` grading
processes at a time (grader/batch.py runs them), each kernel on its share of the cores; `SandboxRunner` (the
default) runs the kernels inside bubblewrap (grader/sandbox.py), forked fresh from a server in the sandbox.
"""
import os
import shutil
import tempfile
from pathlib import Path

import dlcourse
from dlcourse.datasets import ENV_VAR as CIFAR10_VAR, cifar10_sample, find_cifar10
from dlcourse.plot import STATIC_PLOTS_VAR
from grader.course import Course, CourseError
from grader.edition import REFERENCE_PACKAGE, build_student_package, grading_package
from grader.judging import INTEGRITY_CHECK, WARNINGS_TO_STDOUT
from grader.sandbox import (CONFIG_VAR, KERNEL_NAME, KernelServer, SandboxConfig, bwrap_available, kill_all,
                            sandbox_uid, write_kernel_spec)
from grader.torchvision_data import HOME_LINK, IN_SANDBOX, STARTUP as TORCHVISION_STARTUP, cached_cifar10


def grading_ipython_dir(course: Course) -> Path:
    """An IPython directory for the grading kernels, with the startup files: warnings to stdout, the integrity check,
    torchvision's checksums of the grader's CIFAR-10 copy (grader/torchvision_data.py)."""
    ipython_dir = course.root / ".ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-warnings-to-stdout.py").write_text(WARNINGS_TO_STDOUT)
    (startup / "01-integrity.py").write_text(INTEGRITY_CHECK)
    (startup / "02-torchvision-cifar10.py").write_text(TORCHVISION_STARTUP)
    return ipython_dir


def merged(*configs) -> dict:
    "nbgrader settings `{section: {name: value}}`, later ones over earlier ones."
    out = {}
    for config in configs:
        for section, values in (config or {}).items():
            out.setdefault(section, {}).update(values)
    return out


class LocalRunner:
    "Autogrades with nbgrader, kernels on this machine with the instructor's rights."

    workers = 1

    def __init__(self, course: Course, session: Path = None):
        self.course = course
        s = course.settings
        self.timeout = s.notebook_timeout * len(s.parts)  # a whole submission
        self.env = {STATIC_PLOTS_VAR: "1",  # nobody can move a slider in an autograded notebook
                    "IPYTHONDIR": str(grading_ipython_dir(course))}

    def grade_one(self, student: str, config: dict = None):
        "Autograde one submission (`config`: nbgrader settings, e.g. another gradebook); the error text, or None."
        return self.course.autograde_here(student, self.env, config)

    def close(self):
        "Remove what the runner set up for its kernels."


class ParallelRunner(LocalRunner):
    "Autogrades with `workers` grading processes at a time, each kernel on its share of the cores."

    def __init__(self, course: Course, session: Path = None):
        super().__init__(course)
        self.workers = max(1, course.settings.workers)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        self.env = {**self.env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


class SandboxRunner(ParallelRunner):
    """Autogrades with the kernels inside bubblewrap (grader/sandbox.py): no network, none of the course's files but
    the submission's own copy, limits on memory, processes, CPU time and file size, and every process a kernel
    started killed when it ends. The runner starts one sandbox (a `KernelServer`) when it grades its first
    submission, and each notebook's kernel is forked fresh from it; before each submission it refills the package
    the sandbox imports as `dlcourse` with that submission's own.

    What every kernel reads is prepared once, in a `session` folder: the start-up files, the decoded data and the
    package template. A runner given the `session` of another (a grading process of the same batch) uses it as it
    is; the one that made it removes it on `close`. Every kernel also finds the CIFAR-10 it grades with in
    torchvision's format, read-only, at ~/.pytorch-datasets/cifar-10-batches-py (grader/torchvision_data.py: a copy
    cached once per source, outside the session)."""

    def __init__(self, course: Course, session: Path = None):
        super().__init__(course)
        reason = bwrap_available()
        if reason:
            raise CourseError(f"settings.ini: runner = sandbox, but {reason}. Install it, or set runner = parallel "
                              "(or local) to grade without a sandbox, knowing that submissions then run with your "
                              "rights and can read the gradebook.")
        self.owner = session is None
        self.session = Path(session or tempfile.mkdtemp(prefix="dlcourse-grading-"))
        s = course.settings
        self.ipython, cache = self.session / "ipython", self.session / "cache"
        # the reference package is replaced by each submission's own: helpers real, exercises the student's
        self.package_template = self.session / "package"
        if self.owner:  # copied where no secret lies beside them
            shutil.copytree(self.env["IPYTHONDIR"], self.ipython)
            build_student_package(course, self.package_template, package=REFERENCE_PACKAGE)
            warm_cache(cache)
            write_kernel_spec(self.session / "jupyter")
        self.read_only = [str(cache)]
        self.torchvision_cifar10 = cached_cifar10()
        cifar10 = os.environ.get(CIFAR10_VAR)
        if cifar10:
            self.read_only.append(str(Path(cifar10).resolve()))
        self.env = {**self.env, "DLCOURSE_CACHE": str(cache), "JUPYTER_PATH": str(self.session / "jupyter")}
        self.limits = dict(memory_bytes=int(s.memory_limit_gb * 2 ** 30), max_processes=s.max_processes,
                           cpu_seconds=s.notebook_timeout, file_bytes=int(s.max_file_mb * 2 ** 20))
        self.server = None

    def sandbox(self) -> KernelServer:
        "This runner's sandbox, started on first use (and again if it has died)."
        if self.server is None or not self.server.alive():
            self.close_sandbox()
            box = Path(tempfile.mkdtemp(prefix="sandbox-", dir=self.session))
            for folder in ("run", "package"):
                (box / folder).mkdir(mode=0o755)
            cfg = SandboxConfig(run=str(box / "run"), control=str(box / "control.sock"), ipython=str(self.ipython),
                                uid=sandbox_uid(), read_only=self.read_only,
                                replaced=[(str(box / "package"), str(Path(dlcourse.__file__).parent)),
                                          (str(self.torchvision_cifar10), IN_SANDBOX)],
                                home_links={HOME_LINK: IN_SANDBOX}, **self.limits)
            self.server = KernelServer(cfg, {**os.environ, **self.env})
            cfg.save(box / "sandbox.json")
        return self.server

    def grade_one(self, student: str, config: dict = None):
        cfg = self.sandbox().cfg
        box = Path(cfg.run).parent
        build = Path(tempfile.mkdtemp(prefix=f"{student}-", dir=self.session))
        sockets = Path(tempfile.mkdtemp(prefix="sockets-", dir=cfg.run))  # the kernels' IPC sockets
        os.chown(sockets, cfg.uid, cfg.uid)
        try:
            (build / "runtime").mkdir()
            package = grading_package(self.package_template, self.course.submitted(student), build / "package")
            refill(box / "package", package)
            env = {**self.env, CONFIG_VAR: str(box / "sandbox.json"), "JUPYTER_RUNTIME_DIR": str(build / "runtime")}
            kernel = {"Execute": {"kernel_name": KERNEL_NAME},
                      "KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}}
            return self.course.autograde_here(student, env, merged(config, kernel))
        finally:
            kill_all(cfg.uid, spare={cfg.server_pid})
            for folder in [build, sockets, *Path(cfg.run).glob("kernel-*")]:  # a killed launcher leaves its kernel's
                shutil.rmtree(folder, ignore_errors=True)

    def close_sandbox(self):
        if self.server is not None:
            self.server.close()
            shutil.rmtree(Path(self.server.cfg.run).parent, ignore_errors=True)
            self.server = None

    def close(self):
        self.close_sandbox()
        if self.owner:
            shutil.rmtree(self.session, ignore_errors=True)


def refill(folder: Path, source: Path):
    "Replace what `folder` holds by what `source` holds, keeping `folder` itself (a sandbox binds it)."
    for entry in folder.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    shutil.copytree(source, folder, symlinks=True, dirs_exist_ok=True)


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


def make_runner(course: Course, session: Path = None):
    "The runner `settings.ini` names; `session`: the folder another runner of the same batch prepared."
    name = course.settings.runner
    if name not in RUNNERS:
        raise CourseError(f"settings.ini: runner = {name!r} is unknown; choose one of {sorted(RUNNERS)}")
    return RUNNERS[name](course, session)
