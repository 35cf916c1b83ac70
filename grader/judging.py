"""Hidden tests judged outside the sandbox: the student's kernel only observes.

A hidden region ends with `hidden_test(observe, judge, make_inputs)` (see `dlcourse.authoring`). When grading, the
region is split here:

* the grader calls `make_inputs` with a generator seeded afresh for every run, so that no submission can carry the
  answers in;
* the student's kernel receives the inputs and the region without `judge` and `make_inputs`: it runs `observe` and
  displays its observations as one output of type `MIME`, which never reaches the notebook;
* the grader loads the observations with `torch.load(weights_only=True)`, which builds tensors and plain
  containers only, and runs `judge` on them, in this process. The expected values are computed here, with the
  reference package where a judge needs it, and never enter the kernel.

The kernel's start-up file (`INTEGRITY_CHECK`) records the functions that grading relies on before any student code
runs; each observation carries the list of those that changed since, and a changed one is reported as tampering.
"""
import ast
import base64
import io
import secrets
from dataclasses import dataclass, field

import torch

from dlcourse.authoring import HIDDEN_BEGIN, HIDDEN_END, judge_namespace

MIME = "application/vnd.dlcourse.observation+base64"
PROBE_NAME = "__dlcourse_probe"  # the function the probe cell defines
ENTRY = "hidden_test"


@dataclass
class HiddenTest:
    kernel_code: str  # what the kernel runs: the region without the judge's functions
    judge_code: str  # what the grader runs: the region's imports and the judge's functions
    observe: str
    judge: str
    make_inputs: str | None
    needs_cuda: bool = False


@dataclass
class Verdict:
    passed: bool
    message: str = ""
    tampering: list = field(default_factory=list)
    seed: int | None = None
    not_run: bool = False  # a test that needs CUDA, on a runner without a GPU

    def as_dict(self):
        return dict(passed=self.passed, message=self.message, tampering=self.tampering, seed=self.seed,
                    not_run=self.not_run)


def hidden_region(source: str) -> str | None:
    "The code between the hidden-test markers of a test cell, or None."
    lines = source.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() in (HIDDEN_BEGIN, HIDDEN_END)]
    if len(marks) != 2:
        return None
    return "\n".join(lines[marks[0] + 1:marks[1]])


def split_hidden_test(source: str) -> HiddenTest | None:
    "The cell's hidden test split into the kernel's part and the grader's, or None if it is not written as one."
    region = hidden_region(source)
    if region is None:
        return None
    body = ast.parse(region).body
    if not body:
        return None
    call = body[-1].value if isinstance(body[-1], ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == ENTRY):
        return None
    names = dict(zip(("observe", "judge", "make_inputs"), call.args))
    names.update({k.arg: k.value for k in call.keywords if k.arg != "needs_cuda"})
    cuda = [k.value for k in call.keywords if k.arg == "needs_cuda"]
    if cuda and not isinstance(cuda[0], ast.Constant):
        raise ValueError(f"{ENTRY}(..., needs_cuda=True or False): a constant")
    if not all(isinstance(v, ast.Name) for v in names.values()) or not {"observe", "judge"} <= set(names):
        raise ValueError(f"{ENTRY}(...) takes the names of functions defined in the hidden region")
    names = {k: v.id for k, v in names.items()}
    trusted = {names["judge"], names.get("make_inputs")}
    defs = {s.name for s in body if isinstance(s, ast.FunctionDef)}
    missing = {n for n in (names["observe"], *trusted) if n} - defs
    if missing:
        raise ValueError(f"the hidden region must define {sorted(missing)} itself")
    kernel = [s for s in body[:-1] if not (isinstance(s, ast.FunctionDef) and s.name in trusted)]
    judge = [s for s in body[:-1] if isinstance(s, (ast.Import, ast.ImportFrom))
             or (isinstance(s, ast.FunctionDef) and s.name in trusted)]
    return HiddenTest(kernel_code=ast.unparse(ast.Module(kernel, [])), judge_code=ast.unparse(ast.Module(judge, [])),
                      observe=names["observe"], judge=names["judge"], make_inputs=names.get("make_inputs"),
                      needs_cuda=bool(cuda and cuda[0].value))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_inputs(test: HiddenTest, seed: int):
    "The test's inputs, made here from `seed`, and the judge's namespace they were made in."
    ns = judge_namespace()
    exec(compile(test.judge_code, "<judge>", "exec"), ns)
    inputs = ns[test.make_inputs](torch.Generator().manual_seed(seed)) if test.make_inputs else None
    return inputs, ns


def probe_code(test: HiddenTest, inputs, seed: int) -> str:
    """The code the kernel runs after the test cell's visible part. It runs the region in the notebook's namespace
    (so that `observe` finds the student's names), compiled under a name that no traceback can quote, removes what
    it defined, and displays the observations."""
    buf = io.BytesIO()
    torch.save(inputs, buf)
    return f"""def __dlcourse_probe(ns):
    import base64, builtins, io, linecache, torch
    from IPython.display import display
    linecache.cache.pop(__dlcourse_probe.__code__.co_filename, None)  # this cell's source: not for tracebacks
    check = getattr(builtins, "__dlcourse_integrity__", lambda: ["the grader's integrity check was removed"])
    inputs = torch.load(io.BytesIO(base64.b64decode({_b64(buf.getvalue())!r})), weights_only=False)
    saved = dict(ns)
    try:
        exec(compile(base64.b64decode({_b64(test.kernel_code.encode())!r}).decode(), "<hidden test>", "exec"), ns)
        torch.manual_seed({seed})
        seen = ns[{test.observe!r}](inputs)
    finally:  # the notebook's namespace as it was: the hidden test's names leave it
        ns.clear()
        ns.update(saved)
    out = io.BytesIO()
    torch.save({{"seen": seen, "tampering": check()}}, out)
    display({{{MIME!r}: base64.b64encode(out.getvalue()).decode()}}, raw=True)
try:
    __dlcourse_probe(globals())
finally:
    del __dlcourse_probe
"""


def fresh_seed() -> int:
    return secrets.randbelow(2 ** 31)


def judge_outputs(test: HiddenTest, inputs, ns: dict, outputs, seed: int) -> Verdict:
    "The verdict on the probe's `outputs` (the kernel's), judged here."
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if errors:
        e = errors[0]
        return Verdict(False, f"{e.get('ename')}: {e.get('evalue')}"[:500], seed=seed)
    bundles = [o for o in outputs if MIME in o.get("data", {})]
    if len(bundles) != 1:
        return Verdict(False, "the hidden tests' observations did not arrive intact",
                       [f"{len(bundles)} observation outputs instead of one"], seed)
    try:
        payload = torch.load(io.BytesIO(base64.b64decode(bundles[0]["data"][MIME])), weights_only=True,
                             map_location="cpu")
        seen, tampering = payload["seen"], list(payload["tampering"])
    except Exception as e:
        return Verdict(False, f"the code returned something that is not a tensor, number or string: "
                              f"{type(e).__name__}", seed=seed)
    if tampering:
        return Verdict(False, "the grading environment was changed: " + "; ".join(map(str, tampering)),
                       [str(t) for t in tampering], seed)
    try:
        ns[test.judge](inputs, seen)
    except AssertionError as e:
        return Verdict(False, str(e) or "a hidden check failed", seed=seed)
    except Exception as e:
        return Verdict(False, f"{type(e).__name__}: {e}"[:500], seed=seed)
    return Verdict(True, seed=seed)


# nbgrader gives 0 to a test cell that writes to stderr, and a harmless library warning would do that to correct
# code. The grading kernels run this at start-up (an IPython startup file), so warnings are printed to stdout.
WARNINGS_TO_STDOUT = """\
import sys
import warnings

def _show_on_stdout(message, category, filename, lineno, file=None, line=None):
    sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))

warnings.showwarning = _show_on_stdout
"""


# The kernel's start-up file records, before any student code, what the probe and the tests rely on: builtins,
# comparisons, serialisation and display. `__dlcourse_integrity__()` lists what changed since, and whether an IPython
# custom exception handler was set.
INTEGRITY_CHECK = '''\
def _dlcourse_integrity():
    import base64, builtins, io, sys, torch, torch.testing, unittest
    import IPython.display
    kernel_own = {"exit", "quit", "get_ipython", "display", "input"}  # the kernel resets these for each cell
    modules = ("torch", "builtins", "base64", "io", "IPython.display")

    def current():
        now = {f"builtins.{k}": v for k, v in vars(builtins).items() if not k.startswith("_") and k not in kernel_own}
        # not torch.manual_seed: torch itself wraps it when torch._dynamo is first imported
        now.update({f"torch.{k}": getattr(torch, k, None) for k in ("allclose", "equal", "isclose", "save", "load", "Tensor")})
        now.update({"torch.testing.assert_close": torch.testing.assert_close, "base64.b64encode": base64.b64encode,
                    "base64.b64decode": base64.b64decode, "io.BytesIO": io.BytesIO,
                    "IPython.display.display": IPython.display.display,
                    "unittest.TestCase.assertTrue": unittest.TestCase.assertTrue})
        now.update({f"sys.modules[{k!r}]": sys.modules.get(k) for k in modules})
        return now
    recorded = current()

    def changed():
        now = current()
        found = [f"{k} replaced" for k, v in recorded.items() if now.get(k) is not v]
        shell = getattr(builtins, "get_ipython", lambda: None)()
        if shell is not None and getattr(shell, "custom_exceptions", ()):
            found.append("an IPython custom exception handler was set")
        return found
    builtins.__dlcourse_integrity__ = changed

_dlcourse_integrity()
del _dlcourse_integrity
'''
