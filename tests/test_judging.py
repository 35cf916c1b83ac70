"""Hidden tests judged outside the kernel (grader/judging.py): the split, the probe's round trip, the verdicts.

The probe runs here in a plain namespace, with IPython's `display` captured, which is what a kernel would send; the
sandboxed end-to-end runs are in tests/test_sandbox.py.
"""
import base64
import io

import IPython.display
import nbformat
import pytest
import torch

from grader.judging import (INTEGRITY_CHECK, MIME, judge_outputs, make_inputs, probe_code, split_hidden_test)
from grader.preprocessors import HideHiddenTests, neutral

CELL = '''\
assert double(1) == 2
### BEGIN HIDDEN TESTS
import math

def make_inputs(gen):
    return torch.randn(5, generator=gen)

def observe(x):
    return {"y": double(x)}

def judge(x, seen):
    expected = x + x  # the secret
    assert torch.allclose(seen["y"], expected), "double(x) is x + x"

hidden_test(observe, judge, make_inputs)
### END HIDDEN TESTS'''


SHOWN = []  # what the probe displays


@pytest.fixture(autouse=True)
def integrity_check(monkeypatch):
    "IPython's `display` captured, then what a grading kernel's start-up file installs."
    import builtins
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: SHOWN.append(
        {"output_type": "display_data", "data": obj}))
    exec(INTEGRITY_CHECK, {})
    yield builtins.__dlcourse_integrity__
    del builtins.__dlcourse_integrity__


def run_probe(test, inputs, seed, namespace):
    "The probe's outputs, as nbclient would record them: its display bundles, or the error it raised."
    SHOWN.clear()
    try:
        exec(probe_code(test, inputs, seed), namespace)
    except Exception as e:
        return [{"output_type": "error", "ename": type(e).__name__, "evalue": str(e)}]
    return list(SHOWN)


def judged(double, seed=7):
    test = split_hidden_test(CELL)
    inputs, ns = make_inputs(test, seed)
    namespace = {"torch": torch, "double": double}
    return judge_outputs(test, inputs, ns, run_probe(test, inputs, seed, namespace), seed), namespace


def test_the_kernel_gets_no_judge_and_the_grader_no_observe():
    test = split_hidden_test(CELL)
    assert "def observe" in test.kernel_code and "import math" in test.kernel_code
    assert "judge" not in test.kernel_code and "make_inputs" not in test.kernel_code and "secret" not in test.kernel_code
    assert "x + x" not in test.kernel_code
    assert "def judge" in test.judge_code and "def make_inputs" in test.judge_code and "observe" not in test.judge_code
    assert (test.observe, test.judge, test.make_inputs, test.needs_cuda) == ("observe", "judge", "make_inputs", False)
    assert split_hidden_test(CELL.replace("make_inputs)", "make_inputs, needs_cuda=True)")).needs_cuda


def test_cells_not_written_as_observe_and_judge_are_left_alone():
    assert split_hidden_test("assert f(1) == 2") is None
    assert split_hidden_test("### BEGIN HIDDEN TESTS\nassert f(0) == 0\n### END HIDDEN TESTS") is None
    with pytest.raises(ValueError, match="must define"):
        split_hidden_test(CELL.replace("def judge(", "def judge_it("))


def test_correct_code_passes_and_a_bug_fails_with_the_message_only():
    verdict, namespace = judged(lambda x: 2 * x)
    assert verdict.passed and verdict.seed == 7 and verdict.tampering == []
    assert set(namespace) == {"torch", "double", "__builtins__"}, "the probe left names in the notebook"
    verdict, _ = judged(lambda x: x)
    assert not verdict.passed and verdict.message == "double(x) is x + x" and verdict.tampering == []


def test_inputs_are_fresh_for_each_seed():
    test = split_hidden_test(CELL)
    assert not torch.equal(make_inputs(test, 1)[0], make_inputs(test, 2)[0])
    assert torch.equal(make_inputs(test, 3)[0], make_inputs(test, 3)[0])


def test_an_exception_in_the_students_code_fails_the_test():
    def broken(x):
        raise NotImplementedError("not yet")
    verdict, _ = judged(broken)
    assert not verdict.passed and verdict.message == "NotImplementedError: not yet"


def test_observations_that_are_not_data_are_refused():
    verdict, _ = judged(lambda x: len)  # a function: weights_only loading refuses it
    assert not verdict.passed and "not a tensor" in verdict.message


def test_an_extra_observation_is_tampering():
    test = split_hidden_test(CELL)
    inputs, ns = make_inputs(test, 0)
    outputs = run_probe(test, inputs, 0, {"torch": torch, "double": lambda x: 2 * x})
    verdict = judge_outputs(test, inputs, ns, outputs * 2, 0)
    assert not verdict.passed and verdict.tampering


def test_the_integrity_check_reports_what_was_replaced(integrity_check):
    real = torch.allclose
    try:
        assert integrity_check() == []
        torch.allclose = lambda *a, **k: True
        assert integrity_check() == ["torch.allclose replaced"]
    finally:
        torch.allclose = real


def test_a_tampered_kernel_fails_its_tests():
    test = split_hidden_test(CELL)
    inputs, ns = make_inputs(test, 0)
    seen = io.BytesIO()
    torch.save({"seen": {"y": 2 * inputs}, "tampering": ["torch.allclose replaced"]}, seen)
    bundle = {"output_type": "display_data", "data": {MIME: base64.b64encode(seen.getvalue()).decode()}}
    verdict = judge_outputs(test, inputs, ns, [bundle], 0)
    assert not verdict.passed and verdict.tampering == ["torch.allclose replaced"]


def test_outputs_that_nbgrader_reads_as_points_are_neutralised():
    result = nbformat.v4.new_output("execute_result", data={"text/plain": "99.0"}, execution_count=1)
    assert neutral(result).output_type == "display_data"
    err = nbformat.v4.new_output("stream", name="stderr", text="warning")
    assert neutral(err).name == "stdout" and neutral(err).text == "warning"


def test_feedback_removes_hidden_lines_from_every_output():
    nb = nbformat.v4.new_notebook()
    test_cell = nbformat.v4.new_code_cell(CELL, metadata={"nbgrader": {"grade": True, "solution": False}})
    leaked = nbformat.v4.new_code_cell("print(stolen)", metadata={"nbgrader": {"grade": False, "solution": True}})
    leaked.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                             text="    expected = x + x  # the secret\nmine\n__dlcourse_probe(ns)\n")]
    nb.cells = [test_cell, leaked]
    nb, _ = HideHiddenTests().preprocess(nb, {})
    text = nb.cells[1].outputs[0].text
    assert "secret" not in text and "__dlcourse_probe" not in text and "mine" in text
    assert "BEGIN HIDDEN" not in nb.cells[0].source and "assert double(1) == 2" in nb.cells[0].source
