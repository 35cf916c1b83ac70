"""The hidden tests are fair: they fail every mutant of the bank and pass every correct alternative.

The bank (tests/bank.py) holds single-bug mutants of every exercise, each with a witness that shows its bug through
the API, and correct solutions the course allows. The notebooks' own test cells, hidden tests included, run on each
entry in this process (tests/bank_runner.py), as `nbgrader autograde` would run them in a kernel.
"""
import ast
import re
import time
from pathlib import Path

import pytest
import torch

from dlcourse.authoring import HIDDEN_BEGIN, HIDDEN_END, remove_hidden_tests
from grader.course import load_settings
from grader.judging import make_inputs, split_hidden_test

from bank import ALTERNATIVES, MUTANTS
from bank_runner import load_cells, observable, run_notebook

# the parts the bank covers (Part 5's exercises are checked by its own samples and tests/test_experiments.py)
PARTS = ["part1_backprop", "part2_optimizers", "part2_training", "part3_mlp", "part3_classifier",
         "part3_experiments", "part4_cnn"]
HYPER_PARAMETERS = {"part2_overfit_hp", "part2_optim_hp", "part2_dropout_hp", "part3_hp", "part4_optim_hp"}
MIN_CATCH_RATE = 0.95


def test_bank_covers_every_exercise():
    assert len(MUTANTS) >= 60 and len(ALTERNATIVES) >= 25, (len(MUTANTS), len(ALTERNATIVES))
    names = [e.name for e in MUTANTS + ALTERNATIVES]
    assert len(names) == len(set(names)), "bank entries need distinct names"
    exercises = {(part, gid) for part in PARTS for gid, _, is_solution, _ in load_cells(part)
                 if is_solution and gid not in HYPER_PARAMETERS}
    mutated = {(e.part, gid) for e in MUTANTS for gid, _, _ in e.edits}
    assert exercises - mutated == set(), "exercises without a mutant"
    assert mutated <= exercises, "mutants of cells that are no exercise"


def test_every_hidden_assertion_names_its_property():
    "A failed hidden assertion tells the student and the grade table which property failed."
    silent = []
    for part in load_settings().parts:  # every notebook of the assignment, Part 5's too
        for gid, is_test, _, source in load_cells(part):
            if is_test and HIDDEN_BEGIN in source:
                hidden = source.split(HIDDEN_BEGIN)[1].split(HIDDEN_END)[0]
                silent += [f"{part}/{gid}: {ast.unparse(node)[:80]}" for node in ast.walk(ast.parse(hidden))
                           if isinstance(node, ast.Assert) and node.msg is None]
    assert silent == [], "hidden assertions without a message:\n" + "\n".join(silent)


def test_every_visible_assertion_says_what_it_found():
    "A failed visible test, in the notebook, the self-check and the feedback, says what came out and what was expected."
    silent = [f"{part}/{gid}: {ast.unparse(node)[:80]}" for part in load_settings().parts
              for gid, is_test, _, source in load_cells(part) if is_test
              for node in ast.walk(ast.parse(remove_hidden_tests(source)))
              if isinstance(node, ast.Assert) and node.msg is None]
    assert silent == [], "visible assertions without a message:\n" + "\n".join(silent)


def test_a_failed_forward_pass_shows_what_came_out_and_what_was_expected():
    "LeakyReLU's visible test on a forward that flips the sign of negative inputs: the message shows one such input."
    (mutant,) = [e for e in MUTANTS if e.name == "lrelu_negative_slope_sign"]
    ns = run_notebook(mutant.part, mutant.edits, definitions_only=True).namespace
    test = next(src for gid, _, _, src in load_cells(mutant.part) if gid == "test_leaky_relu")
    with pytest.raises(AssertionError) as failure:
        exec(remove_hidden_tests(test), ns)
    found = re.fullmatch(r"forward differs from torch.nn.LeakyReLU: largest difference (\S+) at index \[\d+, \d+\]: "
                         r"got (\S+), expected (\S+)", str(failure.value))
    assert found, str(failure.value)
    difference, got, expected = map(float, found.groups())
    assert expected < 0 and got == pytest.approx(-expected, rel=1e-4) and difference == pytest.approx(2 * got, rel=1e-2)


def test_every_test_cell_is_judged_outside_the_kernel():
    "Only a judge in the grader decides a test cell's points (grader/judging.py): every one ends with hidden_test."
    legacy = [f"{part}/{gid}" for part in load_settings().parts
              for gid, is_test, is_solution, source in load_cells(part)
              if is_test and not is_solution and split_hidden_test(source) is None]
    assert legacy == [], f"test cells whose hidden tests still run in the student's kernel: {legacy}"


@pytest.mark.parametrize("entry", MUTANTS, ids=lambda e: e.name)
def test_each_mutant_is_observable(entry):
    assert observable(entry), f"{entry.name}: its witness behaves as the reference does"


def test_reference_passes_every_test_cell():
    for part in PARTS:
        run = run_notebook(part)
        assert run.ran and run.failures == {}, (part, run.failures)


def test_hidden_tests_catch_mutants_and_pass_alternatives():
    start = time.perf_counter()
    missed, false_fails, lines = [], [], []
    for entry in MUTANTS:
        run = run_notebook(entry.part, entry.edits, stop_at_first_failure=True)
        if run.failures:
            lines.append(f"  caught  {entry.part}/{entry.name}: {next(iter(run.failures))}")
        else:
            missed.append(entry.name)
            lines.append(f"  MISSED  {entry.part}/{entry.name} ({entry.description})")
    for entry in ALTERNATIVES:
        run = run_notebook(entry.part, entry.edits)
        for cell, why in run.failures.items():
            false_fails.append(f"{entry.name} fails {cell}: {why}")
            lines.append(f"  FALSE FAIL  {entry.part}/{entry.name} in {cell}: {why}")
    rate = 1 - len(missed) / len(MUTANTS)
    report = (f"bank: {len(MUTANTS) - len(missed)}/{len(MUTANTS)} mutants caught ({100 * rate:.1f}%), "
              f"{len(ALTERNATIVES)} alternatives, {len(false_fails)} false fails, {time.perf_counter() - start:.0f} s")
    print("\n".join([report, *lines]))
    assert rate >= MIN_CATCH_RATE and not false_fails, "\n".join([report, *[f"missed {m}" for m in missed], *false_fails])


def judge_of(part, gid):
    "The hidden judge of test cell `gid`, as the grader runs it."
    test = split_hidden_test(next(src for g, _, _, src in load_cells(part) if g == gid))
    _, ns = make_inputs(test, seed=0)
    return ns[test.judge]


def reference_answer(part, gid):
    "What the reference solution cell `gid` (a function of no arguments) returns."
    ns = {"nn": torch.nn}
    exec(next(src for g, _, _, src in load_cells(part) if g == gid), ns)
    return ns[gid]()


@pytest.mark.slow
def test_hyper_parameters_are_judged_apart_from_earlier_parts():
    # A student whose own run misses the target because of a bug in an earlier exercise (the layers, the
    # optimizers) keeps the points when the hyper-parameters are right: the judge repeats the run with the course's
    # reference code. Wrong hyper-parameters still fail. (The cheapest of the three runs; the other two judges
    # follow the same pattern, and `make demo` shows them: Part 1 bugs lose no Part 2 training points.)
    judge, good = judge_of("part2_training", "test_overfit"), reference_answer("part2_training", "part2_overfit_hp")
    judge(None, {"hp": good, "best_acc": 10.0, "seed": 42})
    with pytest.raises(AssertionError, match="memorise its 20 images"):
        judge(None, {"hp": {**good, "lr": 0.0}, "best_acc": 10.0, "seed": 42})
    with pytest.raises(AssertionError, match="gives wstd, lr and reg"):
        judge(None, {"hp": {"lr": good["lr"]}, "best_acc": 100.0, "seed": 42})
    # Part 4's overfitting check, after a Part 3 bug in the CNN's classifier head: the loss is rebuilt by name
    judge = judge_of("part4_cnn", "test_part4_overfit")
    sgd = {k: v for k, v in reference_answer("part4_cnn", "part4_optim_hp").items() if k != "loss_fn"}
    seen = {"keys": ["loss_fn", *sgd], "loss": "CrossEntropyLoss", "best_acc": 10.0, "seed": 42, "sgd": sgd}
    judge(None, seen)
    with pytest.raises(AssertionError, match="memorise the 50 images"):
        judge(None, {**seen, "sgd": {**sgd, "lr": 0.0}})
    with pytest.raises(AssertionError, match="memorise the 50 images"):
        judge(None, {**seen, "loss": "MyOwnLoss"})


def course_variants():
    import sys
    sys.path.insert(0, str(Path(__file__).parent / "course_format"))
    from variants import VARIANTS
    return VARIANTS


@pytest.mark.parametrize("variant", course_variants(), ids=lambda v: v.name)
def test_correct_code_written_to_the_course_skeleton_passes_every_main_cell(variant):
    "Variants the course allows of a solution written to its own skeleton (tests/course_format/variants.py)."
    from test_course_format import main_cell_failures, parts_of, variant_modules
    parts = parts_of(Path(variant.module).stem)
    failures, report = main_cell_failures(variant_modules(variant), parts=parts)
    assert failures == {}, f"{variant.name} ({variant.description}): {failures}"
    assert report.problems == [], report.problems
