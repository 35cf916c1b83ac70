"""The copying check (`python -m grader similarity`, grader/similarity.py) on a class with planted copies.

Four students write Part 1's exercises independently (the reference, and correct alternatives of tests/bank.py: each
student's leaky_relu and dropout differ from everyone else's); one copies a classmate's notebooks verbatim, one
copies another's and renames the variables and reorders independent statements; one hands in the stubs. Only
notebooks are built and compared: nothing is graded."""
import csv
import dataclasses
from itertools import combinations

import nbformat
import pytest

from bank import ALTERNATIVES
from grader.__main__ import main
from grader.course import Course, load_settings
from grader.samples import Sample, build_submission
from grader.similarity import exercise_cells, similarity

pytestmark = pytest.mark.slow  # grades a course of copied submissions

PARTS = ("part1_backprop", "part2_optimizers")
ALT = {a.name: a for a in ALTERNATIVES}
INDEPENDENT = {
    "ana": [],  # the reference solutions
    "ben": ["dropout_bernoulli_test_time_scaling", "lrelu_max_form", "sigmoid_written_out", "ce_logsumexp",
            "momentum_torch_form"],
    "cai": ["dropout_caches_boolean_mask", "lrelu_caches_mask", "tanh_cached_input", "sequential_index_loops",
            "momentum_dict_by_index"],
    "dee": ["alt_conventions_part1", "linear_flattens", "vsgd_updates_gradient"],
}
# fay's copy of cai: other names and cache keys, the two independent first lines of Dropout.forward swapped
DISGUISE = (
    ("dropout", """scale = 1 / (1 - self.p) if self.training_mode else 1.0
        keep = torch.rand(x.shape) > self.p if self.training_mode else torch.ones(x.shape, dtype=torch.bool)
        self.grad_cache.update(keep=keep, scale=scale)
        return x * keep * scale""",
     """kept = torch.rand(x.shape) > self.p if self.training_mode else torch.ones(x.shape, dtype=torch.bool)
        factor = 1 / (1 - self.p) if self.training_mode else 1.0
        self.grad_cache.update(factor=factor, kept=kept)
        return x * kept * factor"""),
    ("dropout", 'return dout * self.grad_cache["keep"] * self.grad_cache["scale"]',
     'return dout * self.grad_cache["kept"] * self.grad_cache["factor"]'),
    ("leaky_relu", 'self.grad_cache["slope"] = torch.where(x > 0, torch.ones_like(x), torch.full_like(x, self.alpha))\n'
                   '        return x * self.grad_cache["slope"]',
     'self.grad_cache["gain"] = torch.where(x > 0, torch.ones_like(x), torch.full_like(x, self.alpha))\n'
     '        return x * self.grad_cache["gain"]'),
    ("leaky_relu", 'return dout * self.grad_cache["slope"]', 'return dout * self.grad_cache["gain"]'),
)
PLANTED = {("dee", "eve"), ("cai", "fay")}  # eve: dee's verbatim; fay: cai's disguised
CHECKED = ("dropout", "leaky_relu")  # the exercises every independent student wrote differently


def edits(names):
    return tuple(e for name in names for e in ALT[name].edits)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = Course(dataclasses.replace(load_settings(), parts=PARTS), root=tmp_path_factory.mktemp("course"))
    course.student_version()
    for name, alternatives in INDEPENDENT.items():
        build_submission(course, Sample(name, "independent", edits(alternatives)))
    build_submission(course, Sample("eve", "copies dee", edits(INDEPENDENT["dee"])))
    build_submission(course, Sample("fay", "copies cai, disguised", edits(INDEPENDENT["cai"]) + DISGUISE))
    build_submission(course, Sample("gus", "hands in the stubs", blank=True))
    build_submission(course, Sample("hal", "hands in Part 1's stubs only", blank=True), parts=PARTS[:1])
    return course


@pytest.fixture(scope="module")
def result(course):
    return similarity(course, progress=False)


def test_the_students_wrote_these_exercises_differently(course):
    cells = {s: exercise_cells(nbformat.read(course.submitted(s) / "part1_backprop.ipynb", 4)) for s in INDEPENDENT}
    for gid in CHECKED:
        assert len({cells[s][gid] for s in INDEPENDENT}) == len(INDEPENDENT), gid


@pytest.mark.parametrize("gid", CHECKED)
def test_planted_copies_rank_above_every_independent_pair(result, gid):
    score = {(a, b): s for a, b, _, g, s in result.rows if g == gid}
    independent = {pair: score[pair] for pair in combinations(sorted(INDEPENDENT), 2)}
    for pair in PLANTED:
        assert score[pair] > max(independent.values()), (pair, score[pair], independent)
    ranked = [(a, b) for a, b, _, g, _ in result.rows if g == gid]  # rows are ranked within an exercise
    assert set(ranked[:2]) == PLANTED
    assert score[("dee", "eve")] == pytest.approx(1.0)


def test_planted_copies_lead_the_overall_ranking(result):
    # overall, exercises count by how far a pair lies above the exercise's median: the many cells that all four
    # independent students left as the reference (identical) add nothing
    assert {(a, b) for a, b, *_ in result.overall[:2]} == PLANTED
    assert result.overall[1][2] > result.overall[2][2] + 1


def test_the_given_code_does_not_count(result):
    # Part 2's momentum_sgd: ana and dee both wrote the reference; ben, cai its other two forms. The given code (the
    # class, __init__, the loop over parameters) is most of each cell, and must not make them look alike.
    score = {(a, b): s for a, b, _, g, s in result.rows if g == "momentum_sgd"}
    assert score[("ana", "dee")] == pytest.approx(1.0)
    assert score[("ana", "ben")] < 0.7 and score[("ben", "cai")] < 0.7


def test_stubs_and_missing_notebooks_are_left_out_and_said(result):
    compared = {s for a, b, *_ in result.rows for s in (a, b)}
    assert compared == set(INDEPENDENT) | {"eve", "fay"}
    stub = result.skipped["still the stub"]
    assert {key[0] for key in stub} == set(PARTS)
    assert all(students == (["gus", "hal"] if part == PARTS[0] else ["gus"]) for (part, _), students in stub.items())
    assert result.skipped["not handed in"] == {("part2_optimizers", ""): ["hal"]}


def test_report(course, result, capsys, monkeypatch):
    folder = course.root / "similarity"
    rows = list(csv.DictReader((folder / "similarity.csv").open()))
    assert len(rows) == len(result.rows)
    assert {r["exercise"] for r in rows if (r["student_a"], r["student_b"]) == ("cai", "fay")} >= set(CHECKED)
    index = (folder / "index.html").read_text()
    page = folder / "pairs" / "part1_backprop.dropout.cai.fay.html"
    assert "pairs/part1_backprop.dropout.cai.fay.html" in index and "gus" in index
    assert page.read_text().count("highlight-red") >= 2 and "factor" in page.read_text()
    # the command line, on the same course directory
    monkeypatch.setattr("grader.__main__.Course", lambda settings: course)
    assert main(["similarity", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "gus, still the stub" in out and "report:" in out
