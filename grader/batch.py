"""Grading a whole course: many submissions at a time, here or as a Slurm job array, resumable, nothing lost.

nbgrader's gradebook is one SQLite file, unsafe for concurrent writers. So each worker grades into a scratch
gradebook of its own (a snapshot of the course gradebook) and, once nbgrader has finished a submission, writes a
marker `done/<student>.json` (the submission's fingerprint, the notebooks graded, when it finished). `merge` is the
one place that writes the course gradebook: it copies the grades of every marked submission from its scratch
gradebook, oldest first, and records each notebook in the ledger (`batch/ledger.json`). A notebook the ledger
already holds from that run or a later one is skipped, so merging twice, or again after a crash, changes nothing,
and a student graded twice keeps the latest run. A submission is graded again only when the course gradebook or the
ledger lacks it, or its files (a resubmission) or the assignment changed.

    batch/ledger.json                         student -> notebook -> fingerprint, run, finished
    batch/runs/<run>/settings.json            the settings the run grades with (Slurm tasks read them)
    batch/runs/<run>/template.db              the course gradebook when the run started
    batch/runs/<run>/<worker>/gradebook.db    a worker's scratch gradebook
    batch/runs/<run>/<worker>/done/<student>.json, failed/<student>.json
"""
import configparser
import dataclasses
import fcntl
import hashlib
import json
import os
import queue
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from tqdm.auto import tqdm

from grader.course import ROOT, Course, CourseError, Settings
from grader.report import write_atomic
from grader.runner import make_runner, merged


def fingerprint(folder: Path) -> str:
    "A hash of every file under `folder`, names and contents: it changes when a student resubmits."
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def snapshot(src: Path, dst: Path):
    "A consistent copy of the SQLite database `src` (SQLite's online backup)."
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def copy_submission(src: Gradebook, dst: Gradebook, assignment: str, student: str, notebooks):
    """Set `student`'s grades and comments of `notebooks` in `dst` to those in `src`, keeping what a person graded in
    `dst` (the same result however often)."""
    sub = src.find_submission(assignment, student)
    st = sub.student
    dst.update_or_create_student(student, first_name=st.first_name, last_name=st.last_name, email=st.email,
                                 lms_user_id=st.lms_user_id)
    try:
        target = dst.find_submission(assignment, student)
    except MissingEntry:
        with warnings.catch_warnings():  # nbgrader's add_submission trips a harmless SQLAlchemy autoflush warning
            warnings.simplefilter("ignore", SAWarning)
            target = dst.add_submission(assignment, student)
    target.timestamp = sub.timestamp
    targets = {nb.name: nb for nb in target.notebooks}
    for nb in sub.notebooks:
        if nb.name not in notebooks:
            continue
        t = targets[nb.name]
        t.flagged, t.late_submission_penalty = nb.flagged, nb.late_submission_penalty
        # What a person gave in `dst` (formgrader's score, extra credit and comment) stays: a worker grades a fresh
        # submission, which has none. As nbgrader does when it grades again, a cell graded by hand needs a review.
        grades = {g.name: g for g in t.grades}
        for g in nb.grades:
            tg = grades[g.name]
            tg.auto_score = g.auto_score
            tg.manual_score = g.manual_score if tg.manual_score is None else tg.manual_score
            tg.extra_credit = g.extra_credit if tg.extra_credit is None else tg.extra_credit
            tg.needs_manual_grade = g.needs_manual_grade or tg.manual_score is not None
        comments = {c.name: c for c in t.comments}
        for c in nb.comments:
            tc = comments[c.name]
            tc.auto_comment = c.auto_comment
            tc.manual_comment = c.manual_comment if tc.manual_comment is None else tc.manual_comment
    dst.db.commit()


def load_run_settings(run: Path) -> Settings:
    fields = json.loads((Path(run) / "settings.json").read_text())
    return Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


@dataclasses.dataclass
class SlurmSettings:
    "settings.ini [slurm]: where `python -m grader autograde --slurm` sends its tasks."
    students_per_task: int = 10
    cpus_per_task: int = 2
    time_per_task: str = None
    partition: str = None
    gpu_partition: str = None
    gpu_parts: tuple = ()
    account: str = None

    @classmethod
    def load(cls, path=ROOT / "settings.ini"):
        cfg = configparser.ConfigParser(inline_comment_prefixes=("#",))
        cfg.read(path)
        sec = cfg["slurm"] if cfg.has_section("slurm") else {}
        try:
            return cls(students_per_task=int(sec.get("students_per_task") or 10),
                       cpus_per_task=int(sec.get("cpus_per_task") or 2),
                       time_per_task=sec.get("time_per_task") or None, partition=sec.get("partition") or None,
                       gpu_partition=sec.get("gpu_partition") or None,
                       gpu_parts=tuple((sec.get("gpu_parts") or "").split()), account=sec.get("account") or None)
        except ValueError as e:
            raise CourseError(f"{path} [slurm]: {e}") from e

    def groups(self, parts):
        "(partition, gpus, parts) for each partition the parts are graded on, in the order of the parts."
        gpu = [p for p in parts if p in self.gpu_parts]
        cpu = [p for p in parts if p not in self.gpu_parts]
        return [g for g in [(self.partition, 0, tuple(cpu)), (self.gpu_partition, 1, tuple(gpu))] if g[2]]


class Worker:
    "Grades submissions one after another into its own scratch gradebook, with a marker for each one finished."

    def __init__(self, course: Course, runner, folder: Path, template: Path, parts=None):
        self.course, self.runner, self.folder = course, runner, Path(folder)
        self.parts = tuple(parts or course.settings.parts)
        for sub in ("done", "failed"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.db = self.folder / "gradebook.db"
        if not self.db.exists():
            shutil.copy(template, self.db)
        self.url = f"sqlite:///{self.db}"
        self.run = self.folder.parent.name
        self.course_fp = (self.folder.parent / "course.txt").read_text()

    def grade(self, student: str):
        "Grade `student` (this worker's parts); the error text, or None."
        s = self.course.settings
        fp = fingerprint(self.course.submitted(student))  # before grading: a resubmission meanwhile is regraded
        with Gradebook(self.url, course_id=s.course_id) as gb:
            try:
                gb.remove_submission(s.assignment_id, student)  # the snapshot's old grades must not stay
            except MissingEntry:
                pass
        db = {"CourseDirectory": {"db_url": self.url}}
        if self.parts == tuple(s.parts):
            err = self.runner.grade_one(student, db)
        else:  # some notebooks only (a Slurm partition's share): nbgrader keeps the others as they are
            err = next(filter(None, (self.runner.grade_one(student, merged(db, {"CourseDirectory": {"notebook_id": p}}))
                                     for p in self.parts)), None)
        record = dict(student=student, fingerprint=fp, course=self.course_fp, run=self.run, notebooks=self.parts,
                      finished=time.time(), error=err)
        write_atomic(self.folder / ("failed" if err else "done") / f"{student}.json", json.dumps(record))
        if not err:
            (self.folder / "failed" / f"{student}.json").unlink(missing_ok=True)
        return err


class Batch:
    "The course's grading batches: what is left to grade, grading it here or on Slurm, and the merge."

    def __init__(self, course: Course):
        self.course = course
        self.dir = course.root / "batch"
        self.runs = self.dir / "runs"
        self.ledger_path = self.dir / "ledger.json"

    # -- the record of what the course gradebook holds
    def ledger(self) -> dict:
        return json.loads(self.ledger_path.read_text()) if self.ledger_path.exists() else {}

    def course_fingerprint(self) -> str:
        "The assignment as nbgrader generated it (source notebooks, hidden tests, files): regrade all if it changes."
        return fingerprint(self.course.source)

    def todo(self, students) -> list:
        "The students whose submission is not in the course gradebook as it is now, in order."
        s = self.course.settings
        ledger, course_fp = self.ledger(), self.course_fingerprint()
        in_gradebook = set()
        if self.course.gradebook_path.exists():
            with self.course.gradebook() as gb:
                try:
                    in_gradebook = {sub.student_id for sub in gb.find_assignment(s.assignment_id).submissions}
                except MissingEntry:
                    pass

        def current(student):
            fp = fingerprint(self.course.submitted(student))
            graded = ledger.get(student, {})
            return student in in_gradebook and all(
                graded.get(p, {}).get("fingerprint") == fp and graded[p].get("course") == course_fp for p in s.parts)
        return [st for st in students if not current(st)]

    # -- the merge: the one writer of the course gradebook
    def merge(self, progress=False) -> int:
        "Copy every finished submission of every run into the course gradebook, oldest first; how many it copied."
        markers = []
        for path in self.runs.glob("*/*/done/*.json"):
            try:
                markers.append((json.loads(path.read_text()), path.parent.parent / "gradebook.db"))
            except (OSError, ValueError):
                continue  # a marker is written atomically: an unreadable one is not ours
        markers.sort(key=lambda m: m[0]["finished"])
        s = self.course.settings
        ledger, merged = self.ledger(), 0
        if markers:
            with self.course.gradebook() as dst:
                for m, db in tqdm(markers, desc="merging", unit="submission", disable=not progress):
                    entry = ledger.setdefault(m["student"], {})
                    new = [p for p in m["notebooks"] if entry.get(p, {}).get("finished", 0) < m["finished"]]
                    if not new:
                        continue  # merged before, or a later run graded it
                    with Gradebook(f"sqlite:///{db}", course_id=s.course_id) as src:
                        copy_submission(src, dst, s.assignment_id, m["student"], new)
                    for p in new:
                        entry[p] = {k: m[k] for k in ("fingerprint", "course", "run", "finished")}
                    write_atomic(self.ledger_path, json.dumps(ledger, indent=1, sort_keys=True))
                    merged += 1
        return merged

    def failures(self, run: Path) -> dict:
        "student -> error, for the submissions of `run` that failed and were not graded by another worker."
        done = {p.stem for p in run.glob("*/done/*.json")}
        return {p.stem: json.loads(p.read_text())["error"] for p in sorted(run.glob("*/failed/*.json"))
                if p.stem not in done}

    def lock(self):
        "One batch at a time in a course: a second one stops and says so."
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.dir / "lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CourseError(f"another grading batch is running in {self.course.root} (lock: {self.dir / 'lock'}); "
                              "wait for it to finish") from None
        return handle

    def new_run(self) -> Path:
        self.runs.mkdir(parents=True, exist_ok=True)
        run = self.runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        run.mkdir()
        write_atomic(run / "settings.json", json.dumps(dataclasses.asdict(self.course.settings)))
        (run / "course.txt").write_text(self.course_fingerprint())
        snapshot(self.course.gradebook_path, run / "template.db")
        return run

    def finish(self, run: Path, students, stopped="the worker stopped first") -> dict:
        "Merge, then student -> error or None for `students` of `run`."
        self.merge()
        failed = self.failures(run)
        left = set(self.todo(students))
        return {st: (failed.get(st) or f"not graded ({stopped})") if st in left else None for st in students}

    def plan(self, students, progress):
        "Merge what an earlier run left, then the students still to grade (printed)."
        if self.merge(progress=progress) and progress:
            print("merged the grades an earlier, interrupted run had finished")
        for run in list(self.runs.glob("*")) if self.runs.exists() else []:
            shutil.rmtree(run, ignore_errors=True)  # merged: nothing in it is needed any more
        todo = self.todo(students)
        if progress:
            print(f"{len(students) - len(todo)} of {len(students)} submissions graded and unchanged; "
                  f"{len(todo)} to grade")
        return todo

    # -- grading here
    def grade(self, students, progress=True) -> dict:
        "Grade what is left of `students` with `workers` grading processes here; student -> error or None."
        with self.lock():
            todo = self.plan(students, progress)
            if not todo:
                return {st: None for st in students}
            run = self.new_run()
            runner = make_runner(self.course)  # prepares what every grading process shares (runner.session)
            n_workers = min(len(todo), runner.workers)
            jobs, lock, stop = queue.Queue(), threading.Lock(), threading.Event()
            for st in todo:
                jobs.put(st)
            counts = {"done": 0, "failing": 0}
            bar = tqdm(total=len(todo), desc="grading", unit="submission", disable=not progress)
            processes = []

            def work(k):
                process = None
                while not stop.is_set():
                    try:
                        student = jobs.get_nowait()
                    except queue.Empty:
                        break
                    if process is None:  # a new one after a crash: the rest of the queue still gets graded
                        process = GradingProcess(run, f"worker-{k}", getattr(runner, "session", None))
                        with lock:
                            processes.append(process)
                    err = process.grade(student, timeout=runner.timeout + 60)
                    if not process.alive():
                        process.stop()
                        process = None
                    with lock:
                        counts["failing" if err else "done"] += 1
                        bar.update()
                        bar.set_postfix(done=counts["done"], failing=counts["failing"], left=len(todo) - bar.n)
                if process is not None:
                    process.close()
            threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(n_workers)]
            try:
                for t in threads:
                    t.start()
                for t in threads:
                    while t.is_alive():
                        t.join(0.5)
            finally:
                stop.set()
                with lock:
                    for process in processes:
                        process.stop()
                bar.close()
                runner.close()
                errors = self.finish(run, todo)
                shutil.rmtree(run, ignore_errors=True)
            return {st: errors.get(st) for st in students}

    # -- grading on Slurm
    def grade_on_slurm(self, students, slurm: SlurmSettings = None, progress=True, poll=5.0) -> dict:
        """Grade what is left of `students` as Slurm job arrays (one task per shard of students, one array per
        partition), each task into its own scratch gradebook; wait for them, then merge."""
        from dlcourse.slurm import SlurmArray
        slurm = slurm or SlurmSettings.load()
        with self.lock():
            todo = self.plan(students, progress)
            if not todo:
                return {st: None for st in students}
            run = self.new_run()
            n = max(1, slurm.students_per_task)
            shards = [todo[i:i + n] for i in range(0, len(todo), n)]
            python = shlex.quote(sys.executable)
            arrays = []
            for g, (partition, gpus, parts) in enumerate(slurm.groups(self.course.settings.parts)):
                cmds = [f"{python} -m grader grade-shard {shlex.quote(str(run))} worker-{g}-{k} "
                        f"--parts {' '.join(parts)} -- {' '.join(map(shlex.quote, shard))}"
                        for k, shard in enumerate(shards)]
                arrays.append(SlurmArray(f"grade-{g}", cmds, log_dir=run / "logs", workdir=ROOT, partition=partition,
                                         account=slurm.account, gpus=gpus, cpus=slurm.cpus_per_task,
                                         time=slurm.time_per_task))
            try:
                jobs = [(a, a.submit()) for a in arrays]
                for a, job in jobs:
                    if progress:
                        print(f"submitted job array {job}: {len(a.commands)} tasks of up to {n} students "
                              f"(partition {a.partition or 'default'}), logs in {run / 'logs'}/")
                    a.wait(job, poll=poll, progress=progress)
                logs = {st: a.log(k) for a in arrays for k, shard in enumerate(shards) for st in shard}
                errors = self.finish_slurm(run, todo, logs)
            except BaseException:
                self.merge()  # what finished is kept; the run's folder stays for the tasks still running
                raise
            return {st: errors.get(st) for st in students}

    def finish_slurm(self, run, students, logs):
        "Merge; a failed student's error names its task's log, kept in batch/logs/; the run's folder goes."
        errors = self.finish(run, students, "its Slurm task stopped first")
        for st, err in errors.items():
            if err and logs[st].exists():
                kept = self.dir / "logs" / f"{run.name}-{logs[st].name}"
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(logs[st], kept)
                errors[st] = f"{err}\n(Slurm log: {kept})"
        shutil.rmtree(run, ignore_errors=True)
        return errors


class GradingProcess:
    """A grading process of a batch (`python -m grader grade-worker`): it grades the students sent to it one after
    another into its scratch gradebook `run/name`, with nbgrader and torch imported once. A submission that takes
    longer than its time, or kills the process, costs that submission alone: the batch starts another process."""

    def __init__(self, run: Path, name: str, session=None):
        folder = Path(run) / name
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "grader", "grade-worker", str(run), name]
        if session:
            cmd += ["--session", str(session)]
        self.log = open(folder / "worker.log", "ab")
        # a session of its own: the batch stops it, its kernels included, when it ends or is interrupted
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, start_new_session=True)
        self.answers = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.answers.put(line)
        self.answers.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def grade(self, student: str, timeout: float):
        "Grade `student`; the error text, or None."
        try:
            self.proc.stdin.write(student + "\n")
            self.proc.stdin.flush()
            answer = self.answers.get(timeout=timeout)
        except (BrokenPipeError, OSError):
            answer = None
        except queue.Empty:
            self.stop()
            return f"grading took longer than {timeout:.0f} s (settings.ini: notebook_timeout); stopped"
        if answer is None:
            self.stop()
            return f"the grading process stopped while grading it (exit status {self.proc.returncode})"
        return json.loads(answer)["error"]

    def close(self):
        "No more students: let it finish and exit."
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.stop()

    def stop(self):
        "Kill it and everything it started."
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.log.close()


def run_worker(run: Path, name: str, parts=None, session=None):
    "The course, runner and worker of a grading process or Slurm task in `run/name`."
    run = Path(run)
    course = Course(load_run_settings(run), root=run.parent.parent.parent)
    runner = make_runner(course, session)
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus:  # a Slurm task's share of the node
        runner.env = {**runner.env, "OMP_NUM_THREADS": cpus, "MKL_NUM_THREADS": cpus}
    return runner, Worker(course, runner, run / name, run / "template.db", parts)


def serve(run: Path, name: str, session=None) -> int:
    "A grading process: grade each student named on standard input, answer one JSON line each on standard output."
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever else prints goes to the log, not into the answers
    runner, worker = run_worker(run, name, session=session)
    (worker.folder / "pid").write_text(str(os.getpid()))
    threads = runner.env.get("OMP_NUM_THREADS")
    if threads:  # the judges' share of the cores, as the kernels'
        import torch
        torch.set_num_threads(int(threads))
    try:
        for line in sys.stdin:
            student = line.strip()
            (worker.folder / "grading").write_text(student)
            answers.write(json.dumps({"student": student, "error": worker.grade(student)}) + "\n")
    finally:
        runner.close()
    return 0


def grade_shard(run: Path, name: str, students, parts=None) -> int:
    "A Slurm task: grade `students` (their `parts`) into the scratch gradebook `run/name`; 1 if any failed."
    runner, worker = run_worker(run, name, parts)
    try:
        errors = {st: worker.grade(st) for st in students}
    finally:
        runner.close()
    for st, err in errors.items():
        print(f"{st}: {'graded' if err is None else 'FAILED: ' + err}", flush=True)
    return 1 if any(errors.values()) else 0
