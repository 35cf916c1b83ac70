"""Run a chapter notebook's cells in this process, with edits spliced into its exercise cells.

The bank of mutants and correct alternatives (grader/bank.py) is judged by the very test cells that
`nbgrader autograde` runs, hidden tests included, but without a kernel per entry: each notebook's code
cells are executed in a fresh namespace, in order, as a grading kernel would. A test cell fails when it
raises, as it does in nbgrader (warnings count for nothing: the grading kernels print them to stdout). A test cell
whose hidden test is written with `hidden_test(...)` fails only when its hidden test does, as in grading
(grader/judging.py); `hidden_test` then runs its three parts here, as strictly as the grader would.
"""
import contextlib
import io
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import torch

from dlcourse.authoring import remove_hidden_tests, strip_markers
from grader.judging import hidden_region, split_hidden_test

ROOT = Path(__file__).resolve().parents[1]

# The bank grades code, not hyper-parameters: it leaves out the experiments that take minutes and grade only how well
# a model trains (the CIFAR-10 runs; `nbdev-test` and the pipeline test run them), and shortens the training runs
# whose models later cells use, dropping the accuracy targets that only the full runs can meet.
SKIP = {
    "part2_training": {"p2t_given_12", "part2_overfit_hp", "test_overfit", "part2_optim_hp", "p2t_given_15",
                       "test_optim_hp", "part2_dropout_hp", "p2t_given_17", "test_dropout_hp"},
    "part3_classifier": {"test_part3_training"},
    "part3_experiments": {"p3e_given_10"},  # the explorer trains one more model and grades nothing
    "part4_cnn": {"p4_given_10", "part4_optim_hp", "p4_given_11", "test_part4_overfit"},
}
# Witnesses need the notebook's definitions, not its training runs and figures.
NOT_DEFINITIONS = {
    "part3_classifier": {"p3c_given_09", "p3c_given_11", "p3c_given_14", "p3c_given_16", "p3c_given_18", "p3c_given_21"},
    "part3_experiments": {"p3e_given_07"},
}
PATCHES = {
    "part3_classifier": {"p3c_given_09": [("num_epochs=20", "num_epochs=2")]},
    # the depth x width grid shrinks to one configuration (the hidden test judges every one it ran), and the grid's
    # accuracy targets, which only the full runs meet, go (visible and judged)
    "part3_experiments": {
        "p3e_given_07": [("depths = [1, 2, 4]", "depths = [2]"), ("widths = [2, 8, 32, 128]", "widths = [8]"),
                         ("n_epochs=10", "n_epochs=2")],
        "test_mlp_grid": [("assert np.min(test_accs) >= 75.0, test_accs", ""),
                          ("assert np.quantile(test_accs, 0.75) >= 85.0, test_accs", ""),
                          ("[1, 2, 4], [2, 8, 32, 128]", "[2], [8]"),
                          ("assert np.min(test_accs) >= 75.0 and np.quantile(test_accs, 0.75) >= 85.0", "assert True")],
    },
}


@dataclass
class Run:
    failures: dict = field(default_factory=dict)  # test grade_id -> why it failed
    ran: list = field(default_factory=list)  # test grade_ids run
    namespace: dict = field(default_factory=dict)
    seconds: float = 0.0


def load_cells(part):
    "(grade_id, is_test, is_solution, source) of each code cell of nbs/<part>.ipynb, solution markers removed."
    nb = nbformat.read(ROOT / "nbs" / f"{part}.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        cells.append((meta.get("grade_id"), bool(meta.get("grade")), bool(meta.get("solution")),
                      strip_markers(cell.source)))
    return cells


def apply_edits(part, cells, edits):
    "The cells with each (grade_id, old, new) edit made; an edit whose text is gone is an error."
    cells = [list(c) for c in cells]
    for gid, old, new in edits:
        matches = [c for c in cells if c[0] == gid]
        if not matches:
            raise KeyError(f"{part}: no cell {gid!r}")
        if old not in matches[0][3]:
            raise ValueError(f"{part} cell {gid!r} no longer holds {old!r}: update the bank")
        matches[0][3] = matches[0][3].replace(old, new)
    return [tuple(c) for c in cells]


def _exec(source, name, ns):
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    exec(compile("\n".join(lines), f"<{name}>", "exec"), ns)


def run_notebook(part, edits=(), stop_at_first_failure=False, definitions_only=False):
    """Execute the notebook's cells with `edits`; returns the failed test cells and the namespace.
    `definitions_only` runs no test cell and no long-running one (for witnesses)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    run = Run(namespace={"__name__": "__main__"})
    cells = apply_edits(part, load_cells(part), edits)
    patches = PATCHES.get(part, {})
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: on shared cores, more threads only wait for each other
    broken = None  # a non-test cell that raised: every later test cell fails with it
    # test cells above the first edited cell run before the edit exists: they pass as for the reference, so skip them
    first = min((i for i, c in enumerate(cells) if c[0] in {e[0] for e in edits}), default=0)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            for i, (gid, is_test, is_solution, source) in enumerate(cells):
                if gid in SKIP.get(part, ()) or (is_test and i < first):
                    continue
                if definitions_only and (is_test or gid in NOT_DEFINITIONS.get(part, ())):
                    continue
                for old, new in patches.get(gid, ()):
                    if old not in source:
                        raise ValueError(f"{part} cell {gid!r} no longer holds {old!r}: update PATCHES")
                    source = source.replace(old, new)
                if is_test:
                    run.ran.append(gid)
                    if broken is not None:
                        run.failures[gid] = broken
                        continue
                try:
                    if is_test and split_hidden_test(source) is not None:
                        # as graded: the visible part's failure is only a note, the hidden test's verdict decides
                        with contextlib.suppress(Exception):
                            _exec(remove_hidden_tests(source), f"{part}:{gid}:visible", run.namespace)
                        _exec(hidden_region(source), f"{part}:{gid}:hidden", run.namespace)
                    else:
                        _exec(source, f"{part}:{gid}", run.namespace)
                except Exception as e:  # the cell's own failure, as nbgrader sees it
                    why = f"{type(e).__name__}: {e}".strip()[:300]
                    if is_test:
                        run.failures[gid] = why
                    else:
                        broken = f"cell {gid} raised {why}"
                    if stop_at_first_failure:
                        break
                finally:
                    torch.set_default_dtype(torch.float32)
    finally:
        torch.set_num_threads(threads)
        plt.close("all")
    run.seconds = time.perf_counter() - start
    return run


def _same(a, b):
    "Whether two witness results are the same observable behaviour (float round-off aside)."
    import numpy as np
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():
            return torch.allclose(a, b, rtol=1e-4, atol=1e-6, equal_nan=True)
        return torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-6, equal_nan=True)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)
    return type(a) is type(b) and a == b


_definitions = {}


def witness_result(part, edits, code):
    "What the witness `code` sets as `result` on the notebook's definitions with `edits`, or the error it raises."
    key = (part, tuple(edits))
    if key not in _definitions:
        _definitions[key] = run_notebook(part, edits, definitions_only=True).namespace
    ns = dict(_definitions[key])
    exec("import numpy as np\nimport torch\nimport torch.nn as nn", ns)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            exec(compile(code, f"<witness {part}>", "exec"), ns)
        return ns["result"]
    except Exception as e:
        return ("raised", type(e).__name__)
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(torch.float32)


def observable(entry):
    "Whether the mutant's witness behaves differently from the reference's."
    ref = witness_result(entry.part, (), entry.witness)
    if isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], str) and ref[0] == "raised":
        raise AssertionError(f"the witness of {entry.name} fails on the reference: {ref}")
    return not _same(ref, witness_result(entry.part, entry.edits, entry.witness))
