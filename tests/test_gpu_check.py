"The GPU check (bench/gpu_check.py, make gpu-check): its dry run on this CPU, and the report it writes."
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # one dry run of the whole check, about 80 s

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.py"
STEPS = ["pytest-cuda", "loader-bench", "grade-cpu", "grade-cuda", "yourcnn", "study"]
CUDA_STEPS = ["pytest-cuda", "loader-bench", "grade-cuda"]
no_cuda_here = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without CUDA reports")


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    "The dry run, once: (exit status, report.json, report.md, output)."
    out = tmp_path_factory.mktemp("gpu-check")
    res = subprocess.run([sys.executable, str(SCRIPT), "--dry", "--out", str(out / "report"), "--work",
                          str(out / "work")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = out / "report" / "report.json"
    assert report.exists(), res.stdout + res.stderr
    return res.returncode, json.loads(report.read_text()), (out / "report" / "report.md").read_text(), res.stdout


def steps(report):
    return {st["name"]: st for st in report["steps"]}


def test_dry_run_reports_every_step_in_both_files(dry_run):
    rc, report, md, _ = dry_run
    assert report["mode"] == "dry"
    assert [st["name"] for st in report["steps"]] == STEPS
    for st in report["steps"]:
        assert st["status"] in ("passed", "failed", "not run", "timed out")
        assert st["command"], st["name"]
        assert f"| {st['name']} | {st['status']}" in md
    assert rc == 0, [(st["name"], st["reason"]) for st in report["steps"] if st["status"] == "failed"]
    assert report["counts"]["failed"] == 0


@no_cuda_here
def test_cuda_steps_are_not_run_and_never_passed(dry_run):
    _, report, md, _ = dry_run
    by_name = steps(report)
    for name in CUDA_STEPS:
        assert by_name[name]["status"] == "not run", by_name[name]
        assert by_name[name]["reason"].startswith("no CUDA")
        assert f"| {name} | not run: no CUDA" in md
    # the CUDA tests did run under pytest, and every one skipped itself: none counts as passed
    tests = by_name["pytest-cuda"]["numbers"]
    assert tests["tests"] > 0 and tests["skipped"] == tests["tests"] and tests["passed"] == 0
    assert by_name["loader-bench"]["numbers"] == {} and by_name["loader-bench"]["wall_s"] == 0


def test_no_step_counts_as_passed_without_running(dry_run):
    _, report, _, _ = dry_run
    passed = [st for st in report["steps"] if st["status"] == "passed"]
    assert report["counts"]["passed"] == len(passed)
    for st in passed:
        assert st["wall_s"] > 0 and st["numbers"], st["name"]
    assert {st["name"] for st in passed} >= {"grade-cpu", "yourcnn"}


def test_dry_grading_scores_the_reference_and_leaves_the_gpu_test_to_a_gpu(dry_run):
    _, report, _, _ = dry_run
    grade = steps(report)["grade-cpu"]["numbers"]
    assert grade["points"] == grade["max"] > 0 and grade["lost"] == []
    assert grade["not_run"] == ["extra_layers_on_gpu"]


def test_dry_study_counts_the_runs_it_finished(dry_run, tmp_path):
    _, report, _, _ = dry_run
    study = steps(report)["study"]
    assert study["status"] in ("passed", "timed out")
    assert study["numbers"]["runs"] == 34
    assert study["numbers"]["runs_finished"] == len(study["numbers"]["final_test_acc"])
    assert study["reason"].startswith(f"{study['numbers']['runs_finished']} of 34 runs finished")


@no_cuda_here
def test_the_full_check_refuses_without_cuda(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "report"), "--cifar10", str(SCRIPT)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no CUDA" in res.stderr and "DRY=1" in res.stderr
    assert not (tmp_path / "report").exists()


def test_make_runs_the_script():
    dry = subprocess.run(["make", "-n", "gpu-check", "OUT=x", "DRY=1"], cwd=ROOT, capture_output=True, text=True)
    full = subprocess.run(["make", "-n", "gpu-check", "OUT=x", "CIFAR10=data/c.tar.gz", "BUDGET=300"], cwd=ROOT,
                          capture_output=True, text=True)
    assert "bench/gpu_check.py --out x" in dry.stdout and "--dry" in dry.stdout
    assert "--cifar10 data/c.tar.gz" in full.stdout and "--budget 300" in full.stdout and "--dry" not in full.stdout


# --- reading what the steps print and write


def test_loader_figures_are_read_from_its_output():
    line = ("Part 5 CNN K=[32] L=4 P=2 H=[100]: course loop      660 img/s, ours      696 img/s, model alone      "
            "750 img/s -> ours / course = 1.05x, ours / model alone = 1.08\n")
    figures = load_script().loader_figures("device=cuda, torch threads=16\n" + line)
    assert figures == {"Part 5 CNN K=[32] L=4 P=2 H=[100]": dict(course_img_s=660.0, ours_img_s=696.0,
                                                                  model_alone_img_s=750.0, speedup=1.05)}


def test_junit_counts_tell_skipped_from_passed(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text('<testsuites><testsuite><testcase name="a"/><testcase name="b"><skipped message="no CUDA"/>'
                   '</testcase><testcase name="c"><failure/></testcase><testcase name="d"><error/></testcase>'
                   '</testsuite></testsuites>')  # d: a collection error, as pytest writes it
    counts = load_script().junit_counts(xml)
    assert counts == dict(tests=4, passed=1, failed=2, skipped=1, skip_reasons=["no CUDA"])


def test_cuda_grades_must_match_the_cpu_and_score_the_gpu_test():
    compare = load_script().compare_grades
    part = lambda gpu, other: {"cells": {"test_a": other, "extra_layers_on_gpu": gpu},
                               "max": {"test_a": 2.0, "extra_layers_on_gpu": 1.0}}
    cpu = {"parts": {"part1_backprop": part(None, 2.0)}}
    assert compare(cpu, {"parts": {"part1_backprop": part(1.0, 2.0)}}) == []
    assert compare(cpu, {"parts": {"part1_backprop": part(0.0, 2.0)}}) == [
        "part1_backprop/extra_layers_on_gpu: 0.0 of 1.0 on CUDA"]
    assert compare(cpu, {"parts": {"part1_backprop": part(1.0, 1.0)}}) == [
        "part1_backprop/test_a: 2.0 on the CPU, 1.0 on CUDA"]
    assert compare(cpu, {"parts": {"part1_backprop": None}}) == ["part1_backprop: not graded on CUDA"]
