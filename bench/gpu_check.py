"""Everything that needs CUDA, in one go and within a time budget, with one report (report.md + report.json in OUT).

    python bench/gpu_check.py --out OUT --cifar10 PATH [--budget 480]   # on a GPU machine (make gpu-check)
    python bench/gpu_check.py --out OUT --dry                           # on a CPU: tiny profiles (make gpu-check DRY=1)

The steps, each with a time cap, in this order: the CUDA tests (`pytest -m cuda`), the loader benchmark on CUDA, the
reference submission graded on the CPU and with `device = cuda` (the same scores, plus the tests that need a GPU),
YourCNN's reference design on the full CIFAR-10, and the 34-run study with the `full` profile in what is left of the
budget (it reports how many runs finished). A step is "passed" only if it ran and its checks held; a step that
could not run says why ("not run: no CUDA"). The dry run runs the CPU side with tiny budgets on the embedded
CIFAR-10 sample. guide/gpucheck.md says how to run it on a lent GPU machine.
"""
import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's dlcourse and grader, installed or not
    sys.path.insert(0, str(ROOT))

STEPS = ("pytest-cuda", "loader-bench", "grade-cpu", "grade-cuda", "yourcnn", "study")
NO_CUDA = "no CUDA"
TAIL = 3000  # characters of a step's output kept in the report


@dataclasses.dataclass
class Step:
    name: str
    title: str
    command: str = ""
    status: str = "not run"  # passed, failed, not run, timed out
    reason: str = ""  # why not run, what failed, or what the figures mean
    wall_s: float = 0.0
    numbers: dict = dataclasses.field(default_factory=dict)
    log_tail: str = ""

    def label(self):
        return f"{self.status}: {self.reason}" if self.status == "not run" and self.reason else self.status


# --- running a command with a time cap


def run_capped(cmd, cap, env, log):
    "Run `cmd` (its own process group) for at most `cap` s, output to `log`; (exit status or None if cut, seconds)."
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=max(cap, 1))
        except subprocess.TimeoutExpired:
            rc = None
        finally:  # the whole group: grading kernels and sandboxes too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return rc, time.perf_counter() - t


def tail(log):
    text = Path(log).read_text(errors="replace") if Path(log).exists() else ""
    return text[-TAIL:]


def shown(cmd):
    return " ".join(str(c) for c in cmd).replace(str(ROOT) + "/", "")


# --- reading what the steps wrote


def junit_counts(path):
    "tests, passed, failed (errors included), skipped of a pytest JUnit XML file, and the skip reasons."
    root = ET.parse(path).getroot()
    cases = list(root.iter("testcase"))
    failed = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
    skips = [c.find("skipped") for c in cases if c.find("skipped") is not None]
    return dict(tests=len(cases), passed=len(cases) - failed - len(skips), failed=failed,
                skipped=len(skips), skip_reasons=sorted({s.get("message", "") for s in skips}))


LOADER_LINE = re.compile(r"^(?P<model>.+?): course loop +(?P<course>[\d.]+) img/s, ours +(?P<ours>[\d.]+) img/s, "
                         r"model alone +(?P<model_alone>[\d.]+) img/s -> ours / course = (?P<speedup>[\d.]+)x",
                         re.MULTILINE)


def loader_figures(text):
    "model -> images per second (course loop, ours, model alone) and our speed-up, from bench/loader.py's output."
    return {m["model"]: dict(course_img_s=float(m["course"]), ours_img_s=float(m["ours"]),
                             model_alone_img_s=float(m["model_alone"]), speedup=float(m["speedup"]))
            for m in LOADER_LINE.finditer(text)}


def compare_grades(cpu, cuda):
    """What differs between the reference's grades on the CPU and on CUDA (`grade` output): a list of problems. The
    tests not run on the CPU (they need a GPU) must pass on CUDA, and every other test must score the same."""
    problems = []
    for part, on_cpu in cpu["parts"].items():
        on_cuda = cuda["parts"].get(part)
        if on_cpu is None or on_cuda is None:
            problems.append(f"{part}: not graded on {'the CPU' if on_cpu is None else 'CUDA'}")
            continue
        for gid, score in on_cpu["cells"].items():
            if score is None:  # needs a GPU: full marks on CUDA
                if on_cuda["cells"].get(gid) != on_cpu["max"][gid]:
                    problems.append(f"{part}/{gid}: {on_cuda['cells'].get(gid)} of {on_cpu['max'][gid]} on CUDA")
            elif on_cuda["cells"].get(gid) != score:
                problems.append(f"{part}/{gid}: {score} on the CPU, {on_cuda['cells'].get(gid)} on CUDA")
    return problems


def grade_summary(result):
    "Autograded points, tests not run and tests that lost points, over the parts graded."
    parts = [p for p in result["parts"].values() if p]
    return dict(points=sum(p["auto"] for p in parts), max=sum(p["auto_max"] for p in parts),
                not_run=sorted(g for p in parts for g in p["not_run"]),
                lost=sorted(g for p in parts for g in p["failed"]), runner=result["runner"],
                **({"not_sandboxed_because": result["runner_note"]} if result["runner_note"] else {}))


# --- the check


class Check:
    def __init__(self, args):
        self.args, self.dry = args, args.dry
        self.out, self.work = Path(args.out).resolve(), Path(args.work).resolve()
        self.deadline = time.monotonic() + args.budget
        self.started = time.monotonic()
        import torch
        self.cuda = torch.cuda.is_available()
        self.machine = dict(host=platform.node(), python=platform.python_version(), torch=torch.__version__,
                            cpus=os.cpu_count(), gpu=torch.cuda.get_device_name(0) if self.cuda else None)
        self.steps = {name: Step(name, title) for name, title in [
            ("pytest-cuda", "the CUDA tests (pytest -m cuda)"),
            ("loader-bench", "bench/loader.py on CUDA"),
            ("grade-cpu", "the reference submission graded on the CPU (the baseline)"),
            ("grade-cuda", "the reference submission graded with device = cuda"),
            ("yourcnn", "YourCNN's reference design" + (" (dry: 1 epoch of 2 batches, embedded sample)" if self.dry
                                                         else " on the full CIFAR-10")),
            ("study", f"the 34-run study, {'smoke' if self.dry else 'full'} profile, in what is left of the budget")]}
        data = ROOT / "dlcourse" / "sample_data" / "cifar10-sample.tar.gz" if self.dry else Path(args.cifar10).resolve()
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg",
                    "DLCOURSE_CIFAR10": str(data)}

    def left(self):
        return self.deadline - time.monotonic()

    def cap(self, step, seconds):
        "This step's time cap: its own, or what is left of the budget; None (and the step not run) if none is left."
        cap = min(seconds, self.left())
        if cap < 5:
            step.status, step.reason = "not run", "the time budget was spent"
            return None
        return cap

    def execute(self, step, cmd, seconds, env=None):
        "Run `cmd` for `step` with a time cap: the exit status (None if timed out or not run)."
        step.command = shown(cmd)
        cap = self.cap(step, seconds)
        if cap is None:
            return None
        log = self.work / f"{step.name}.log"
        rc, step.wall_s = run_capped(cmd, cap, env or self.env, log)
        step.log_tail = tail(log)
        if rc is None:
            step.status, step.reason = "timed out", f"stopped after {cap:.0f} s"
        else:  # passed, until the step's own checks say otherwise
            step.status, step.reason = ("passed", "") if rc == 0 else ("failed", f"exit status {rc}")
        return rc

    def no_cuda(self, step, cmd):
        step.command, step.status, step.reason = shown(cmd), "not run", NO_CUDA

    # each step: sets status, reason and numbers

    def pytest_cuda(self, step):
        files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                       if re.search(r"mark\.cuda|\bDEVICES\b", p.read_text()))
        xml = self.work / "pytest-cuda.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
               *files]
        rc = self.execute(step, cmd, 150)
        if rc is None or not xml.exists():
            return
        n = step.numbers = junit_counts(xml)
        if n["failed"] or rc != 0:
            step.status, step.reason = "failed", f"{n['failed']} of {n['tests']} failed (exit status {rc})"
        elif n["passed"] == 0 and not self.cuda:  # they skip themselves: not run, never passed
            step.status, step.reason = "not run", f"{NO_CUDA} ({n['skipped']} tests skipped)"
        elif n["passed"] == 0 or n["skipped"]:
            step.status, step.reason = "failed", f"{n['skipped']} skipped on a CUDA machine: {n['skip_reasons']}"

    def loader_bench(self, step):
        cmd = [sys.executable, "bench/loader.py", "--device", "cuda"]
        if not self.cuda:
            return self.no_cuda(step, cmd)
        if self.execute(step, cmd, 120) == 0:
            step.numbers = loader_figures(step.log_tail)
            if not step.numbers:
                step.status, step.reason = "failed", "no figures in its output"

    def grading(self, cpu_step, cuda_step):
        "Both gradings at once (two courses, two grading processes): on the CPU, and with device = cuda."
        parts = ["part1_backprop"] if self.dry else []  # part 1 holds the test that needs a GPU
        env = {k: v for k, v in self.env.items() if k != "DLCOURSE_CIFAR10"}  # both grade on the embedded sample
        todo = {"cpu": cpu_step, "cuda": cuda_step}
        results = {}

        def grade(device):
            step, result = todo[device], self.work / f"grade-{device}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "grade", "--device", device,
                   "--root", str(self.work / f"course-{device}"), "--result", str(result), *parts]
            if device == "cuda" and not self.cuda:
                return self.no_cuda(step, cmd)
            if self.execute(step, cmd, 300, env) == 0:
                results[device] = json.loads(result.read_text())

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(grade, todo))
        for device, step in todo.items():
            if device not in results:
                continue
            result = results[device]
            step.numbers = grade_summary(result)
            if result["error"]:
                step.status, step.reason = "failed", result["error"].splitlines()[0][:300]
            elif step.numbers["lost"]:
                step.status, step.reason = "failed", f"the reference lost points in {step.numbers['lost']}"
        if cpu_step.status == "passed" and "extra_layers_on_gpu" not in cpu_step.numbers["not_run"]:
            cpu_step.status, cpu_step.reason = "failed", "extra_layers_on_gpu was not reported as not run on the CPU"
        if "cuda" in results and "cpu" in results and cuda_step.status == "passed":
            problems = compare_grades(results["cpu"], results["cuda"])
            cuda_step.numbers["differences"] = problems
            if problems or results["cuda"]["parts"]["part1_backprop"] is None:
                cuda_step.status, cuda_step.reason = "failed", "; ".join(problems)[:500]
            else:
                cuda_step.reason = "the same scores as on the CPU, and extra_layers_on_gpu passed"
        elif "cuda" in results and cuda_step.status == "passed":
            cuda_step.status, cuda_step.reason = "failed", "no CPU baseline to compare with"

    def yourcnn(self, step):
        result = self.work / "yourcnn.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "yourcnn", "--result", str(result),
               "--device", "cuda" if self.cuda else "cpu"] + (["--dry"] if self.dry else [])
        if self.execute(step, cmd, 60 if self.dry else 200) == 0:
            fit = json.loads(Path(json.loads(result.read_text())["path"]).read_text())["results"]
            step.numbers = dict(device="cuda" if self.cuda else "cpu", epochs=fit["num_epochs"],
                                test_acc=fit["test_acc"][-1], best_test_acc=max(fit["test_acc"]),
                                test_acc_by_epoch=[round(a, 1) for a in fit["test_acc"]],
                                seconds=round(step.wall_s, 1))

    def study(self, step):
        from dlcourse.experiments import load_experiment, select_runs
        out = self.work / "study"
        cmd = [sys.executable, "-m", "dlcourse.experiments", "run-study", "--profile", "smoke" if self.dry else "full",
               "-o", str(out), "-d", "cuda" if self.cuda else "cpu"]
        self.execute(step, cmd, 20 if self.dry else 3600)
        runs = select_runs()
        done = [r for r in runs if r.result(out).exists()]
        step.numbers = dict(runs=len(runs), runs_finished=len(done),
                            final_test_acc={r.name: round(load_experiment(r.result(out))[1].test_acc[-1], 1)
                                            for r in done})
        if step.status in ("timed out", "passed"):
            step.reason = f"{len(done)} of {len(runs)} runs finished in {step.wall_s:.0f} s"

    # the whole check

    def run(self):
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.out.mkdir(parents=True, exist_ok=True)
        s = self.steps
        plan = [(self.pytest_cuda, s["pytest-cuda"]), (self.loader_bench, s["loader-bench"]),
                (lambda _: self.grading(s["grade-cpu"], s["grade-cuda"]), None),
                (self.yourcnn, s["yourcnn"]), (self.study, s["study"])]
        for fn, step in plan:
            print(f"[{time.monotonic() - self.started:5.0f} s] {step.name if step else 'grade-cpu, grade-cuda'}",
                  flush=True)
            try:
                fn(step)
            except Exception as e:  # a step's own bug: reported, and the next steps still run
                for st in [step] if step else [s["grade-cpu"], s["grade-cuda"]]:
                    st.status, st.reason = "failed", f"{type(e).__name__}: {e}"
            self.write()
        return self.write()

    def report(self):
        steps = [dataclasses.asdict(self.steps[n]) for n in STEPS]
        counts = {k: sum(st["status"] == k for st in steps) for k in ("passed", "failed", "not run", "timed out")}
        return dict(mode="dry" if self.dry else "full", date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    machine=self.machine, budget_s=self.args.budget,
                    wall_s=round(time.monotonic() - self.started, 1), counts=counts, steps=steps)

    def write(self):
        report = self.report()
        (self.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        (self.out / "report.md").write_text(markdown(report))
        return report


def markdown(report):
    m = report["machine"]
    lines = [f"# GPU check ({report['mode']} run), {report['date']}", "",
             f"{m['gpu'] or 'no GPU'}, {m['cpus']} CPUs, Python {m['python']}, torch {m['torch']}, on {m['host']}. "
             f"Budget {report['budget_s']} s, took {report['wall_s']:.0f} s. " +
             ", ".join(f"{v} {k}" for k, v in report["counts"].items()) + ".", "",
             "| step | status | wall (s) |", "|---|---|---|"]
    for st in report["steps"]:
        label = f"{st['status']}: {st['reason']}" if st["reason"] else st["status"]
        lines.append(f"| {st['name']} | {label} | {st['wall_s']:.0f} |")
    for st in report["steps"]:
        lines += ["", f"## {st['name']}: {st['title']}", "", f"`{st['command']}`" if st["command"] else "(no command)"]
        lines += [f"- {k}: {v}" for k, v in st["numbers"].items()]
        if st["status"] == "failed" and st["log_tail"]:
            lines += ["", "```", st["log_tail"][-1500:].rstrip(), "```"]
    return "\n".join(lines) + "\n"


# --- the steps that run in a process of their own


def sandbox_import_problem():
    "Why a sandboxed kernel would not import this checkout's dlcourse (it sees no PYTHONPATH), or None."
    probe = subprocess.run([sys.executable, "-I", "-c", "import importlib.util as u; print(u.find_spec('dlcourse').origin)"],
                           cwd="/", capture_output=True, text=True)
    found = probe.stdout.strip()
    if probe.returncode or Path(found).parent != ROOT / "dlcourse":
        return f"this Python imports dlcourse from {found or 'nowhere'}, not from {ROOT} (make install; guide/gpucheck.md)"
    return None


def grade_reference(args):
    "`grade`: a course of its own at --root, the reference submission graded there; its grades as JSON."
    from grader.batch import Batch
    from grader.course import Course, load_settings
    from grader.report import scores
    from grader.samples import SAMPLES, build_submission
    from grader.sandbox import bwrap_available
    settings = load_settings()
    runner, why = settings.runner, None
    if runner == "sandbox":
        why = bwrap_available() or sandbox_import_problem()
        runner = "parallel" if why else runner  # and the report says why
    settings = dataclasses.replace(settings, device=args.device, runner=runner,
                                   parts=tuple(args.parts or settings.parts))
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    course = Course(settings, root=root)
    course.student_version()
    build_submission(course, SAMPLES["reference"])
    error = Batch(course).grade(["reference"], progress=False).get("reference")
    table = scores(course, ["reference"])["reference"]
    with course.gradebook() as gb:
        maxima = {nb.name: {g.name: g.max_score for g in nb.grade_cells}
                  for nb in gb.find_assignment(settings.assignment_id).notebooks}
    parts = {part: None if sc is None else dict(cells=sc.cells, max=maxima[part], auto=sc.auto, auto_max=sc.auto_max,
                                                 not_run=sc.not_run, failed=sc.failed)
             for part, sc in table.items()}
    Path(args.result).write_text(json.dumps(dict(device=args.device, runner=runner, runner_note=why, error=error, parts=parts)))
    return 0


def train_yourcnn(args):
    "`yourcnn`: exp2's L=3 design (the YourCNN reference) trained by `cnn_experiment`; the result file's path."
    from dlcourse.experiments import STUDY, cnn_experiment
    run = next(r for r in STUDY["exp2"] if r.layers_per_block == 3)
    budget = dict(epochs=1, batches=2, bs_train=32, bs_test=100) if args.dry else \
        dict(epochs=12, batches=10**6, bs_train=128, bs_test=500)  # 12 whole epochs, as the CPU figure
    kw = {**run.kwargs("full", Path(args.result).parent / "yourcnn", device=args.device), **budget,
          "seed": 42, "early_stopping": None}
    path = cnn_experiment(**kw)
    Path(args.result).write_text(json.dumps(dict(path=str(path))))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    g = sub.add_parser("grade", help="(a step) grade the reference submission in a course of its own")
    g.add_argument("--device", required=True)
    g.add_argument("--root", required=True)
    g.add_argument("--result", required=True)
    g.add_argument("parts", nargs="*")
    y = sub.add_parser("yourcnn", help="(a step) train YourCNN's reference design")
    y.add_argument("--device", required=True)
    y.add_argument("--result", required=True)
    y.add_argument("--dry", action="store_true")
    parser.add_argument("--out", help="the folder of report.md and report.json")
    parser.add_argument("--cifar10", help="the full CIFAR-10 (cifar10-jpeg.tar.gz, or a folder); not with --dry")
    parser.add_argument("--dry", action="store_true", help="a dry run on a CPU: tiny profiles, CUDA steps not run")
    parser.add_argument("--budget", type=float, default=480, help="seconds for the whole check (default: 480)")
    parser.add_argument("--work", default=str(ROOT / "build" / "gpu-check"), help="scratch folder (emptied first)")
    args = parser.parse_args(argv)
    if args.command == "grade":
        return grade_reference(args)
    if args.command == "yourcnn":
        return train_yourcnn(args)
    if not args.out:
        parser.error("--out is required (make gpu-check OUT=folder)")
    if not args.dry:
        import torch
        if not torch.cuda.is_available():
            parser.exit(2, "gpu_check: no CUDA device here (torch.cuda.is_available() is False). The full check "
                           "needs one; on a CPU, run the dry run: make gpu-check DRY=1 OUT=...\n")
        if not args.cifar10 or not Path(args.cifar10).exists():
            parser.exit(2, f"gpu_check: the full CIFAR-10 is needed (CIFAR10=path to cifar10-jpeg.tar.gz); "
                           f"{args.cifar10 or 'none'} was given. Copy it into data/ of the checkout first "
                           "(guide/gpucheck.md).\n")
    report = Check(args).run()
    print(f"{', '.join(f'{v} {k}' for k, v in report['counts'].items())} in {report['wall_s']:.0f} s: "
          f"{Path(args.out) / 'report.md'}")
    cut = [st["name"] for st in report["steps"] if st["status"] == "timed out" and st["name"] != "study"]
    return 1 if report["counts"]["failed"] or cut else 0


if __name__ == "__main__":
    sys.exit(main())
