"""Hostile submissions graded in the sandbox: each payload is contained, scores no more than its code earns, and the
rest of the batch is graded as usual.

Each payload is appended to an exercise cell of a Part 1 submission (the first, `LeakyReLU`, unless said
otherwise), in a course of one notebook with short limits. A payload reports what it managed to do by printing `BREACH ...`; none may appear.
"""
import dataclasses
import html
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from dlcourse.datasets import cifar10_sample
from grader.course import ROOT, Course, load_settings
from grader.edition import exercise_notebooks, reference_lines
from grader.report import format_table, scores
from grader.batch import Batch
from grader.runner import make_runner
from grader.sandbox import UID_RANGE, bwrap_available
from grader.samples import SAMPLES, build_submission

from conftest import need

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def sandbox():
    "bubblewrap, and a sandbox it can start here (a missing bwrap fails under `make test` as root)."
    need("bwrap")
    if (reason := bwrap_available()) is not None:
        pytest.skip(f"no sandbox: {reason}")


TOKEN = uuid.uuid4().hex[:8]  # marks this run's stray processes and files

TRY_READ = """
import os, pathlib
for _p in {paths!r}:
    try:
        _found = os.listdir(_p) if os.path.isdir(_p) else open(_p, "rb").read(64)
        print("BREACH read", _p, str(_found)[:80])
    except OSError:
        pass
"""

TRY_WRITE = """
for _p in {paths!r}:
    try:
        open(_p, "w").write("x")
        print("BREACH write", _p)
    except OSError:
        pass
open("written-here-{token}.txt", "w").write("x")  # its own scratch copy: allowed, and thrown away
open("/tmp/pwned-{token}", "w").write("x")  # the sandbox's own /tmp: allowed, and not the host's
"""

STACK_WALK = """
import sys
_f = sys._getframe()
while _f is not None:
    print("frame", _f.f_code.co_filename)
    _f = _f.f_back
"""

READ_REFERENCE = """
import pathlib, dlcourse
for _f in sorted(pathlib.Path(dlcourse.__file__).parent.rglob("*.py")):
    print("FILE", _f, _f.read_text())
"""

# A layer that walks up the stack while the hidden test runs it, and prints what it found after every later cell
STEAL_HIDDEN_TESTS = """
import inspect, sys
_stolen = []
class _Walker(LeakyReLU):
    def forward(self, x, **kw):
        f = sys._getframe(1)
        while f is not None:
            try:
                _stolen.append(inspect.getsource(f.f_code))
            except (OSError, TypeError):
                _stolen.append(repr({{k: str(v)[:200] for k, v in f.f_locals.items()}}))
            f = f.f_back
        return super().forward(x, **kw)
LeakyReLU = _Walker
get_ipython().events.register("post_run_cell", lambda *a: print("STOLEN", *_stolen[-30:], sep="\\n"))
"""

PAYLOADS = {
    # name: (base sample, code appended to the first exercise cell)
    "infinite_loop": ("reference", "while True:\n    pass"),
    "loop_ignoring_interrupts": ("reference", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                              "while True:\n    pass"),
    "memory_bomb": ("reference", "import numpy\n_hog = [numpy.empty(1 << 28, numpy.uint8) for _ in range(400)]"),
    "fork_bomb": ("reference", "import subprocess, sys\nsubprocess.run([sys.executable, '-c', "
                               "'import os, time\\nfor _ in range(3000):\\n    if os.fork() == 0:\\n"
                               "        time.sleep(600); os._exit(0)'])"),
    "os_exit": ("reference", "import os\nos._exit(0)"),  # in the Dropout cell: see KILLED_IN
    "segfault": ("reference", "import ctypes\nctypes.string_at(0)"),
    "huge_output": ("reference", "print('x' * 100_000_000)"),
    "detached_process": ("reference", "import subprocess\nsubprocess.Popen(['sleep', '{token}1'], "
                                      "start_new_session=True, stdin=subprocess.DEVNULL, "
                                      "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"),
    "network": ("reference", "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
                             "    print('BREACH network')\nexcept OSError:\n    pass"),
    "reads_secrets": ("reference", TRY_READ),
    "writes_outside": ("reference", TRY_WRITE),
    "patches_torch": ("dw_transposed", "import torch\ntorch.allclose = lambda *a, **k: True\n"
                                       "torch.equal = lambda *a, **k: True"),
    "custom_exception_handler": ("dw_transposed", "get_ipython().set_custom_exc((BaseException,), "
                                                  "lambda *a, **k: None)"),
    "reads_reference": ("blank", READ_REFERENCE),
    "steals_hidden_tests": ("reference", STEAL_HIDDEN_TESTS),
    # nbgrader scores a test cell by a number it shows as its result: every cell shows 99
    "claims_points": ("dw_transposed", "import sys\nget_ipython().events.register('pre_run_cell', "
                                       "lambda *a: sys.displayhook(99.0))"),
    "patches_builtins": ("dw_transposed", "import builtins\n_real_all = builtins.all\n"
                                          "builtins.all = lambda *a: True\nbuiltins.max = lambda *a, **k: 0"),
}


KILLED_IN = {"os_exit": "dropout"}  # the exercise cell a payload goes into, where it is not the first


@pytest.fixture(scope="module")
def listener():
    "A TCP server on a loopback port of the host, counting the connections it accepts."
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


# Two kernels of one grading process's sandbox, one after the other: the first leaves what it can, the second looks
PLANTS_TRACES = """
import os, signal, subprocess, sys
for _d in ("/tmp", "/dev/shm"):
    try:
        open(f"{{_d}}/trace-{token}", "w").write("x")
    except OSError:
        pass
os.environ["TRACE_{token}"] = "1"
sys.modules["trace_{token}"] = sys
subprocess.Popen(["sleep", "{token}2"], start_new_session=True)
for _s in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
    try:
        os.kill(1, _s)  # the sandbox's server
    except OSError:
        pass
"""

FINDS_TRACES = """
import os, sys
_found = [f"{{_d}}/{{_f}}" for _d in ("/tmp", "/dev/shm") if os.path.isdir(_d) for _f in os.listdir(_d) if "{token}" in _f]
for _p in os.listdir("/proc"):
    try:
        if _p.isdigit() and "{token}" in open(f"/proc/{{_p}}/cmdline").read():
            _found.append(f"process {{_p}}")
    except OSError:
        pass
_found += [n for n in ("TRACE_{token}",) if n in os.environ] + [n for n in ("trace_{token}",) if n in sys.modules]
print("TRACES checked")
if _found:
    print("BREACH traces of an earlier kernel:", _found)
"""


def add_payload(course, name, base, code, target="leaky_relu"):
    "Submission `name`: a copy of `base`'s with `code` appended to the exercise cell `target`."
    shutil.copytree(course.submitted(base), course.submitted(name))
    path = course.submitted(name) / "part1_backprop.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == target)
    cell.source += "\n" + code + "\n"
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    os.environ.pop("DLCOURSE_CIFAR10", None)
    settings = dataclasses.replace(load_settings(), parts=("part1_backprop",), runner="sandbox", cell_timeout=10,
                                   notebook_timeout=180)  # a lost kernel: cell_timeout, then 60 s for its output
    course = Course(settings, root=tmp_path_factory.mktemp("course"))
    course.student_version()
    port, _ = listener
    secrets = [str(course.gradebook_path), str(course.source), str(course.root / "submitted" / "reference"),
               str(ROOT / "nbs"), str(ROOT / "grader"), str(Path.home() / ".ssh"), str(Path.home() / ".cache"),
               "/etc/shadow"]
    outside = [str(course.root / f"pwned-{TOKEN}"), str(course.root / "autograded" / f"pwned-{TOKEN}"),
               str(Path.home() / f"pwned-{TOKEN}")]
    students = ["reference", "dw_transposed", "blank"]
    for name in students:
        build_submission(course, SAMPLES[name])
    for name, (base, payload) in PAYLOADS.items():
        code = payload.format(token=TOKEN, port=port, paths=secrets if name == "reads_secrets" else outside)
        add_payload(course, name, base, code, KILLED_IN.get(name, "leaky_relu"))
        students.append(name)
    errors = Batch(course).grade(students, progress=False)
    course.feedback()
    return course, errors, scores(course, students), outside


def abandon_a_kernel(cfg):
    "Ask the sandbox's server for a kernel and go away while it runs, as a launcher does that nbgrader kills."
    box = Path(tempfile.mkdtemp(dir=cfg.run))
    ports = dict(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
    (box / "connection.json").write_text(json.dumps({"transport": "ipc", "ip": str(box / "kernel"), "key": "",
                                                     "signature_scheme": "hmac-sha256", **ports}))
    for path in (box, box / "connection.json"):
        os.chown(path, cfg.uid, cfg.uid)
    with socket.socket(socket.AF_UNIX) as server:
        server.connect(cfg.control)
        request = {"connection_file": str(box / "connection.json"), "cwd": str(box), "home": str(box)}
        server.sendall(json.dumps(request).encode() + b"\n")
        time.sleep(3)  # the kernel is up, waiting for nbgrader


@pytest.fixture(scope="module")
def traces(graded):
    "`plants_traces`, an abandoned kernel, then `finds_traces`, by one runner: in one sandbox, one after the other."
    course = graded[0]
    for name, payload in (("plants_traces", PLANTS_TRACES), ("finds_traces", FINDS_TRACES)):
        add_payload(course, name, "reference", payload.format(token=TOKEN))
    runner = make_runner(course)
    errors, servers = {}, set()
    try:
        errors["plants_traces"] = runner.grade_one("plants_traces")
        servers.add(runner.server.cfg.server_pid)
        abandon_a_kernel(runner.server.cfg)
        errors["finds_traces"] = runner.grade_one("finds_traces")
        servers.add(runner.server.cfg.server_pid)
    finally:
        runner.close()
    return course, errors, scores(course, ["reference", "plants_traces", "finds_traces"]), servers


def test_no_kernel_finds_what_an_earlier_kernel_of_its_sandbox_left(traces):
    course, errors, table, servers = traces
    assert errors["plants_traces"] is None and errors["finds_traces"] is None
    assert len(servers) == 1, "the sandbox's server did not outlive the kernels"
    assert "TRACES checked" in autograded_text(course, "finds_traces"), "the payload did not run"
    assert "BREACH" not in autograded_text(course, "finds_traces")
    # the server outlived the first kernel's signals: the second was graded as usual
    assert points(table, "finds_traces") == points(table, "reference")


def autograded_text(course, name):
    "Everything the autograded notebook's cells printed."
    path = course.root / "autograded" / name / "hw2" / "part1_backprop.ipynb"
    if not path.exists():
        return ""
    cells = nbformat.read(path, as_version=4).cells
    return "\n".join(str(out) for c in cells if c.cell_type == "code" for out in c.outputs)


def points(table, name):
    sc = table[name]["part1_backprop"]
    return None if sc is None else sc.auto


def test_the_batch_finishes_and_honest_grades_are_intact(graded):
    course, errors, table, _ = graded
    # a kernel whose builtins are broken may hang rather than die: nbgrader is then stopped at the time limit
    assert {name: e for name, e in errors.items() if e and name != "patches_builtins"} == {}
    full = table["reference"]["part1_backprop"].auto_max
    assert points(table, "reference") == full
    assert 0 < points(table, "dw_transposed") < full


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_no_payload_scores_more_than_its_code_earns(graded, name):
    _, _, table, _ = graded
    base = PAYLOADS[name][0]
    assert (points(table, name) or 0) <= points(table, base), f"{name} raised its score"


@pytest.mark.parametrize("name", ["infinite_loop", "memory_bomb", "huge_output", "detached_process",
                                  "network", "reads_secrets", "writes_outside"])
def test_a_contained_payload_is_still_graded_on_its_merits(graded, name):
    # the exercise's class was defined before the payload ran: every test still runs and passes
    _, errors, table, _ = graded
    assert errors[name] is None
    assert points(table, name) == points(table, "reference"), name


@pytest.mark.parametrize("name", ["loop_ignoring_interrupts", "segfault", "patches_builtins"])
def test_a_payload_that_stops_its_kernel_in_the_first_exercise_scores_0(graded, name):
    _, _, table, _ = graded
    assert (points(table, name) or 0) == 0


def test_a_kernel_that_dies_costs_only_the_tests_after_it(graded):
    # os._exit in the Dropout exercise: the tests of the layers before it ran and keep their points
    _, _, table, _ = graded
    assert table["os_exit"]["part1_backprop"].failed == ["test_dropout", "test_mlp", "extra_layers_float64",
                                                         "extra_mlp_options"]
    assert "KernelLost" in autograded_text(graded[0], "os_exit")


def test_nothing_is_read_or_reached_from_inside(graded, listener):
    course, _, _, _ = graded
    for name in PAYLOADS:
        assert "BREACH" not in autograded_text(course, name), name
    assert listener[1] == [], "a sandboxed kernel connected to a loopback port of the host"


def test_nothing_is_written_outside_the_scratch_copy(graded):
    course, _, _, outside = graded
    for path in [*outside, f"/tmp/pwned-{TOKEN}"]:
        assert not Path(path).exists(), path
    assert not list(course.root.rglob(f"written-here-{TOKEN}.txt")), "the scratch copy reached the course folder"


def test_no_process_outlives_grading(graded):
    leftovers = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            text = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
            uid = int(status["Uid"].split()[0])
        except (OSError, KeyError):
            continue
        if status.get("State", "").split()[:1] == ["Z"]:
            continue  # ended already; only its parent's reaping is left
        if f"{TOKEN}1" in text or "time.sleep(600)" in text or uid in UID_RANGE or "grader/sandbox.py" in text:
            leftovers.append(text)
    assert leftovers == []


def test_huge_output_is_cut(graded):
    course, _, _, _ = graded
    assert len(autograded_text(course, "huge_output")) < 5_000_000
    assert "output cut at" in autograded_text(course, "huge_output")


def test_memory_bomb_meets_the_limit(graded):
    course, _, _, _ = graded
    assert "MemoryError" in autograded_text(course, "memory_bomb")



@pytest.mark.parametrize("name", ["patches_torch", "custom_exception_handler"])
def test_tampering_is_reported_and_scores_0(graded, name):
    course, _, table, _ = graded
    sc = table[name]["part1_backprop"]
    assert sc.tampering, f"{name}: no tampering reported"
    assert set(sc.tampering) <= set(sc.failed)
    assert "Tampering detected" in format_table({name: table[name]}, ["part1_backprop"])
    feedback = (course.root / "feedback" / name / "hw2" / "part1_backprop.html").read_text()
    assert "TamperingDetected" in feedback


def test_the_sandbox_holds_no_reference_solution(graded):
    course, _, table, _ = graded
    text = autograded_text(course, "reads_reference")
    assert "FILE" in text and "authoring.py" in text, "the payload did not run"
    leaks = sorted(line for line in reference_lines(exercise_notebooks(), hidden=False) if line in text)
    assert leaks == [], leaks[:5]


def test_hidden_tests_stay_hidden_from_code_that_walks_the_stack(graded):
    course, _, table, _ = graded
    assert points(table, "steals_hidden_tests") == points(table, "reference")
    assert "STOLEN" in autograded_text(course, "steals_hidden_tests"), "the payload did not run"
    hidden = reference_lines(exercise_notebooks(), solutions=False)  # less the public helpers' lines
    feedback = (course.root / "feedback" / "steals_hidden_tests" / "hw2" / "part1_backprop.html").read_text()
    found = sorted(line for line in hidden if html.escape(line, quote=False) in feedback or line in feedback)
    assert found == [], found[:5]


def test_a_number_shown_as_a_result_earns_no_points(graded):
    _, _, table, _ = graded
    assert points(table, "claims_points") <= points(table, "dw_transposed")


def test_a_test_that_needs_a_gpu_is_not_run_on_a_cpu_runner(graded):
    _, _, table, _ = graded
    sc = table["reference"]["part1_backprop"]
    assert sc.not_run == ["extra_layers_on_gpu"] and "extra_layers_on_gpu" not in sc.failed
    assert "Not run: no GPU" in format_table({"reference": table["reference"]}, ["part1_backprop"])


# Code that loads CIFAR-10 as torchvision's tutorials do: the grader's copy, with no network, and read-only
LOADS_CIFAR10 = """
import errno, os
from torchvision.datasets import CIFAR10
from torchvision.transforms import ToTensor
_ds = CIFAR10(root=os.path.expanduser("~/.pytorch-datasets"), train=False, download=True, transform=ToTensor())
print("CIFAR10", len(_ds), tuple(_ds[0][0].shape), _ds.targets[:20], int(_ds.data.astype("int64").sum()))
for _name in ("new-file", "test_batch"):
    try:
        open(os.path.expanduser(f"~/.pytorch-datasets/cifar-10-batches-py/{_name}"), "ab").write(b"x")
        print("BREACH wrote", _name)
    except OSError as _e:
        print("not written:", _name, errno.errorcode[_e.errno])
from dlcourse.datasets import find_cifar10
find_cifar10(train=False)
"""


@pytest.fixture(scope="module")
def loads_cifar10(tmp_path_factory):
    "A Part 1 submission whose first exercise cell also runs `LOADS_CIFAR10`, graded in the sandbox."
    os.environ.pop("DLCOURSE_CIFAR10", None)  # the embedded sample
    settings = dataclasses.replace(load_settings(), parts=("part1_backprop",), runner="sandbox", cell_timeout=60,
                                   notebook_timeout=180)
    course = Course(settings, root=tmp_path_factory.mktemp("course-cifar10"))
    course.student_version()
    build_submission(course, SAMPLES["reference"])
    add_payload(course, "loads_cifar10", "reference", LOADS_CIFAR10)
    runner = make_runner(course)
    try:
        error = runner.grade_one("loads_cifar10")
    finally:
        runner.close()
    return course, error, scores(course, ["loads_cifar10"])["loads_cifar10"]["part1_backprop"]


def test_a_sandboxed_kernel_loads_cifar10_with_torchvision_offline_read_only(loads_cifar10):
    course, error, score = loads_cifar10
    text = autograded_text(course, "loads_cifar10")
    sample = cifar10_sample(train=False)
    assert f"CIFAR10 1000 (3, 32, 32) {sample.labels[:20].tolist()} {int(sample.images.long().sum())}" in text
    assert "not written: new-file EROFS" in text  # a read-only mount
    assert "not written: test_batch" in text  # (EACCES: the instructor's file, refused before the mount's EROFS)
    assert "BREACH" not in text
    assert "test: 1000 images from the embedded sample" in text  # find_cifar10 does not take the copy for CIFAR-10
    assert error is None and score.auto == score.auto_max


def test_a_fork_bomb_is_contained_and_keeps_the_points_before_it_ran_out(graded):
    # its sleeping children hold the sandbox's process limit for the kernel's whole life: the submission's own later
    # tests may fail for it (a kernel out of processes can die), never anyone else's, and nothing outlives grading
    _, errors, table, _ = graded
    sc = table["fork_bomb"]["part1_backprop"]
    assert errors["fork_bomb"] is None and sc is not None
    assert "test_leaky_relu" not in sc.failed and sc.auto <= points(table, "reference")
