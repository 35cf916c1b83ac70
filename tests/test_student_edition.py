"""The student edition (`make student-edition`): unpacked and installed with one `pip install` in a fresh environment
that has no dlcourse, it imports, its exercises are stubs, its self-check tells a blank homework from a finished one,
and no file in it holds reference code.

By default nbgrader validate runs the notebooks that are quick to run (QUICK: the finished ones, and the first of them
blank), the other checks cover every notebook; `make test-edition` (DLCOURSE_EDITION_FULL=1) runs every notebook
blank and finished, which takes several minutes on 2 cores.
"""
import ast
import importlib.metadata
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import nbformat
import pytest

import grader.edition
from dlcourse.authoring import HIDDEN_BEGIN, SOLUTION_BEGIN
from fresh_venv import FreshVenv
from lab_server import lab_server, page_config, status
from grader.course import ASSETS_DIR, ROOT, Course, CourseError, load_settings
from grader.edition import (build_student_package, edition_notebook, exported_modules, find_reference_code,
                            helper_modules, reference_lines, student_edition)
from grader.samples import SAMPLES, build_submission

pytestmark = pytest.mark.slow  # builds the edition and installs it in fresh venvs

SETTINGS = load_settings()
PACKAGE, AID = SETTINGS.student_package, SETTINGS.assignment_id
NOTEBOOKS = [f"{part}.ipynb" for part in SETTINGS.parts]
FULL = bool(os.environ.get("DLCOURSE_EDITION_FULL"))
# Notebooks that run in seconds (no training runs): the default `make test` runs these through nbgrader validate
QUICK = NOTEBOOKS if FULL else [n for n in ("part1_backprop.ipynb", "part2_optimizers.ipynb", "part3_mlp.ipynb")
                                if n in NOTEBOOKS]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    os.environ.pop("DLCOURSE_CIFAR10", None)
    course = Course(SETTINGS, root=tmp_path_factory.mktemp("course"))
    course.student_version()
    return course


@pytest.fixture(scope="module")
def archive(course, tmp_path_factory):
    return student_edition(course, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def edition(archive, tmp_path_factory):
    "The unpacked archive's folder."
    out = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    (folder,) = out.iterdir()
    return folder


@pytest.fixture(scope="module")
def venv(edition, tmp_path_factory):
    "A fresh environment without dlcourse, where the student ran `pip install -e <folder>`."
    env = FreshVenv(tmp_path_factory.mktemp("edition-venv") / "venv", hidden=("dlcourse", PACKAGE))
    env.pip_install("-e", edition)
    env.run("-m", "ipykernel", "install", "--sys-prefix")  # what pip's ipykernel wheel gives a student
    for script in ("nbdev-export", "nbdev-clean"):
        env.add_script(script)
    yield env
    env.remove()


def selfcheck(venv, folder, *args):
    res = venv.run("-m", f"{PACKAGE}.selfcheck", *args, cwd=folder, check=False, timeout=3600 if FULL else 600)
    print(res.stdout)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    return res.returncode, res.stdout


def report(stdout):
    "notebook -> the list of things the self-check says are left in it."
    left, current = {}, None
    for line in stdout.splitlines():
        m = re.match(r"(\S+\.ipynb): (done|\d+ left)", line)
        if m:
            current = m.group(1)
            left[current] = []
        elif line.startswith("    - ") and current:
            left[current].append(line[6:])
    return left


def solution_ids(nb_path):
    return [c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(nb_path, as_version=4).cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]


def test_the_archive_holds_the_notebooks_the_files_they_read_and_the_package(archive, edition):
    assert archive.name == f"{AID}-student.tar.gz" and edition.name == f"{AID}-student"
    files = {p.relative_to(edition).as_posix() for p in edition.rglob("*") if p.is_file()}
    assert {"README.md", "pyproject.toml", *NOTEBOOKS} <= files
    assert {f"tests/assets/{p.name}" for p in ASSETS_DIR.glob("*.pt")} <= files
    helpers = helper_modules()
    assert {"datasets", "plot", "grad_compare", "authoring"} <= set(helpers)  # loading, plots, gradient check, tests
    exercises = exported_modules(edition / n for n in NOTEBOOKS)
    assert {f"{PACKAGE}/{m}.py" for m in [*exercises, *helpers]} <= files
    assert f"{PACKAGE}/sample_data/cifar10-sample.tar.gz" in files and f"{PACKAGE}/selfcheck.py" in files
    assert not [f for f in files if f.endswith((".db", ".pyc")) or "nbgrader_config" in f or "dlcourse" in f], files
    readme = (edition / "README.md").read_text()
    for step in ("pip install -e .", f"python -m {PACKAGE}.jupyter_setup", "jupyter lab", "nbdev-export",
                 f"python -m {PACKAGE}.selfcheck", "## Submit"):
        assert step in readme, step
    assert "pip install dlcourse" not in readme


def test_no_reference_code_anywhere_in_it(course, edition, tmp_path):
    secret = reference_lines(sorted(course.source.glob("*.ipynb")))
    assert len(secret) > 300  # every solution line and hidden-test line of the assignment
    assert find_reference_code(edition, secret) == []
    for path in edition.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            assert not {SOLUTION_BEGIN, HIDDEN_BEGIN} & {line.strip(' ",\\n') for line in text.splitlines()}, path
    # the scan finds reference code where there is some: a reference module dropped into a copy
    shutil.copytree(edition, tmp_path / "leaky")
    shutil.copy(ROOT / "dlcourse" / "layers.py", tmp_path / "leaky" / PACKAGE / "helpers.py")
    assert len(find_reference_code(tmp_path / "leaky", secret)) > 20


def test_the_build_refuses_to_ship_reference_code(course, tmp_path, monkeypatch):
    monkeypatch.setattr(grader.edition, "SELFCHECK", ROOT / "dlcourse" / "layers.py")  # the reference as the self-check
    with pytest.raises(CourseError, match=rf"holds reference code:\n  {PACKAGE}/selfcheck.py"):
        build_student_package(course, tmp_path / "edition")


def test_the_notebooks_import_from_the_student_package(course, edition):
    for name in NOTEBOOKS:
        nb = nbformat.read(edition / name, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert not re.search(r"\bdlcourse\.", code), name
        released = nbformat.read(course.release / name, as_version=4)
        assert [c.source for c in edition_notebook(released, PACKAGE).cells] == [c.source for c in nb.cells]


IMPORT_CHECK = r'''
import json, sys
import {package}, {package}.datasets as datasets
from pathlib import Path
from {package}.grad_compare import compare_layer_to_torch
from {package}.plot import plot_fit
from {package}.training import FitResult
import torch

class Square:  # a layer written here, to run the real gradient check on
    def __call__(self, x): self.x = x; return x * x
    def backward(self, dout): return 2 * self.x * dout
    def params(self): return []

out = dict(file={package}.__file__, sample=[len(datasets.find_cifar10(train=True)), len(datasets.find_cifar10(train=False))],
           diffs=compare_layer_to_torch(Square(), torch.randn(3, 4, dtype=torch.float64), verbose=False),
           fig=type(plot_fit(FitResult(2, [2.0, 1.0], [10.0, 20.0], [2.5, 1.5], [9.0, 15.0]))[0]).__name__)
try:
    import dlcourse
    out["dlcourse"] = dlcourse.__file__
except ImportError:
    out["dlcourse"] = None
print(json.dumps(out))
'''


def test_it_installs_with_one_pip_install_and_imports_without_dlcourse(venv, edition, tmp_path):
    res = venv.run("-c", IMPORT_CHECK.replace("{package}", PACKAGE), cwd=tmp_path)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).parent == edition / PACKAGE  # the editable install of the archive's folder
    assert out["dlcourse"] is None
    assert out["sample"] == [3000, 1000]  # the embedded CIFAR-10 sample, inside the student package
    assert max(out["diffs"]) == 0
    assert out["fig"] == "Figure"


# Exercise stubs with given code before their `raise NotImplementedError()`: how to reach it. Every other stub raises
# at once and is called with None for each argument.
PROBES = {
    "layers.Linear.__init__": "layers.Linear(3, 2)",
    "layers.MLP.__init__": "layers.MLP(3, 2)",
    "optimizers.VanillaSGD.step": "optimizers.VanillaSGD([(torch.zeros(2), torch.zeros(2))]).step()",
    "optimizers.MomentumSGD.__init__": "optimizers.MomentumSGD([(torch.zeros(2), torch.zeros(2))])",
    "optimizers.MomentumSGD.step": "bare(optimizers.MomentumSGD).step()",
    "optimizers.RMSProp.__init__": "optimizers.RMSProp([(torch.zeros(2), torch.zeros(2))])",
    "optimizers.RMSProp.step": "bare(optimizers.RMSProp).step()",
    "training.Trainer.fit": "training.LayerTrainer(None, None, None).fit([], [], num_epochs=1, print_every=0)",
    "training.LayerTrainer.train_batch": "training.LayerTrainer(None, None, None).train_batch((torch.zeros(2, 3), None))",
    "training.LayerTrainer.test_batch": "training.LayerTrainer(None, None, None).test_batch((torch.zeros(2, 3), None))",
    "mlp.MLP.__init__": "mlp.MLP(3, [2], ['relu'])",
    "classifier.decision_grid": "classifier.decision_grid(None, torch.zeros(4, 2))",
    "classifier.select_roc_thresh": "classifier.select_roc_thresh(None, torch.zeros(2, 2), torch.tensor([0, 1]))",
    "cnn.ResidualBlock.__init__": "cnn.ResidualBlock(3, [4], [3])",
    "cnn.ResNet._make_feature_extractor": "cnn.ResNet((3, 8, 8), 2, [4], 1, [4])",
    # its given lines check the config with the (stubbed) models and load the data first: stand-ins for both
    "experiments.cnn_experiment": "(setattr(experiments, 'check_config', lambda cfg: ({}, {})), "
                                  "setattr(experiments, 'cifar10_datasets', lambda: (None, None)), "
                                  "experiments.cnn_experiment('probe', seed=0, device='cpu'))",
}

STUB_PROBE = r'''
import ast, importlib, inspect, json, sys, traceback
import torch
modules = sys.argv[1].split(",")
probes = json.loads(sys.argv[2])
ns = {"torch": torch}
for m in modules:
    ns[m] = importlib.import_module(f"{package}.{m}")

def bare(cls):
    "An optimizer whose own __init__ (a stub) is skipped."
    obj = cls.__new__(cls)
    ns["optimizers"].Optimizer.__init__(obj, [(torch.zeros(2), torch.zeros(2))])
    return obj
ns["bare"] = bare

def instance(cls):
    "An object of `cls` whose __init__ is not run (an abstract class gets its abstract methods filled in)."
    if getattr(cls, "__abstractmethods__", None):
        cls = type(cls.__name__, (cls,), dict.fromkeys(cls.__abstractmethods__, lambda self, *a: None))
    return cls.__new__(cls)

def raises_first(fn):
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return bool(body) and isinstance(body[0], ast.Raise)

def generic_call(module, qualname):
    owner, _, name = qualname.rpartition(".")
    if owner:
        cls = getattr(module, owner)
        fn = cls.__dict__[name]
        args = [p for p in list(inspect.signature(fn).parameters.values())[1:]
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return lambda: fn(instance(cls), *[None] * len(args))
    fn = getattr(module, name)
    args = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
    return lambda: fn(*[None] * len(args))

results, messages = {}, {}
for m in modules:
    path = ns[m].__file__
    source = open(path).read()
    tree = ast.parse(source)
    stubs = []
    for node in tree.body:
        for fn, owner in ([(node, "")] if isinstance(node, ast.FunctionDef) else
                          [(f, node.name + ".") for f in node.body if isinstance(f, ast.FunctionDef)]
                          if isinstance(node, ast.ClassDef) else []):
            if "# YOUR CODE HERE" in ast.get_source_segment(source, fn):
                stubs.append((owner + fn.name, fn))
    for qualname, fn in stubs:
        key = f"{m}.{qualname}"
        if key in probes:
            call = lambda: eval(probes[key], ns)
        elif raises_first(fn):
            call = generic_call(ns[m], qualname)
        else:
            results[key] = "no probe reaches it: add one to PROBES in tests/test_student_edition.py"
            continue
        try:
            call()
            results[key] = "returned without raising"
        except NotImplementedError as e:
            messages[key] = str(e)
            frame = traceback.extract_tb(e.__traceback__)[-1]
            where = (frame.filename, frame.name)
            results[key] = "ok" if where == (path, fn.name) else f"NotImplementedError from {where}"
        except Exception as e:
            results[key] = f"{type(e).__name__}: {e}"
print(json.dumps({"results": results, "messages": messages}))
'''


def test_every_exercise_stub_raises_not_implemented_error(venv, edition, tmp_path):
    modules = sorted(exported_modules(edition / n for n in NOTEBOOKS))
    res = venv.run("-c", STUB_PROBE.replace("{package}", PACKAGE), ",".join(modules), json.dumps(PROBES), cwd=tmp_path)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    results = out["results"]
    assert {k: v for k, v in results.items() if v != "ok"} == {}
    assert set(PROBES) <= set(results)  # no probe is left over from an exercise that changed
    stubs = notebook_stubs(edition)
    assert set(results) == set(stubs)  # the package's stubs are the notebooks' exported ones, all probed
    assert {"layers.LeakyReLU.forward", "cnn.CNN._make_feature_extractor", "training.Trainer.fit"} <= set(results)
    # each says which exercise is unwritten, where, and that later parts see it once exported
    assert out["messages"] == {key: f"`{key.split('.', 1)[1]}` is not written yet: fill in its `# YOUR CODE HERE` in "
                                    f"{notebook}.ipynb, then run nbdev-export" for key, notebook in stubs.items()}


def notebook_stubs(edition):
    "`module.qualname` -> notebook of each function with a `# YOUR CODE HERE` in the notebooks' exported exercise cells."
    stubs = {}
    for name in NOTEBOOKS:
        cells = nbformat.read(edition / name, as_version=4).cells
        default = next(iter(exported_modules([edition / name])), None)  # Part 5 has none: it adds to others
        for cell in cells:
            if not (cell.metadata.get("nbgrader", {}).get("solution") and cell.source.startswith("#| export")):
                continue
            to = re.match(r"#\|[ \t]*export[ \t]+(\w+)[ \t]*$", cell.source, re.MULTILINE)  # `#| export experiments`
            module = to.group(1) if to else default
            for node in ast.parse(cell.source).body:
                defs = [(node, "")] if isinstance(node, ast.FunctionDef) else \
                    [(f, node.name + ".") for f in node.body if isinstance(f, ast.FunctionDef)] \
                    if isinstance(node, ast.ClassDef) else []
                stubs |= {f"{module}.{owner}{fn.name}": Path(name).stem for fn, owner in defs
                          if "# YOUR CODE HERE" in ast.get_source_segment(cell.source, fn)}
    return stubs


def test_self_check_reports_the_blank_notebooks_as_unfinished(venv, edition):
    code, out = selfcheck(venv, edition, "--no-run")
    left = report(out)
    assert code == 1 and "not ready to submit" in out
    assert set(left) == set(NOTEBOOKS)
    for name in NOTEBOOKS:
        exercises = next(item for item in left[name] if item.startswith("exercises to write: "))
        assert exercises.split(": ", 1)[1].split(", ") == solution_ids(edition / name)
        # nothing else: the package is the notebooks' export, the given cells are as nbgrader's checksums say
        assert [item.split(":")[0] for item in left[name]] in (["exercises to write"],
                                                               ["exercises to write", "answers to write"]), left[name]
    run = QUICK if FULL else QUICK[:1]
    code, out = selfcheck(venv, edition, *run)  # nbgrader validate runs them
    left = report(out)
    assert code == 1 and set(left) == set(run)
    failing = {name: [item for item in left[name] if item.startswith("test ")] for name in run}
    assert all(failing.values()), failing
    # the stubs fail the tests (directly, or by what they leave undone), naming the exercise; nothing the edition
    # should hold is missing
    assert any(re.search(r"NotImplementedError: `[\w.]+` is not written yet: fill in its `# YOUR CODE HERE` in "
                         r"part\w+\.ipynb", item) for items in failing.values() for item in items), failing
    assert not [item for name in run for item in left[name]
                if re.search(r"(ModuleNotFound|Import|FileNotFound)Error", item)]


def test_the_command_line_on_a_blank_cnn_says_it_is_not_written(venv, edition, tmp_path):
    "The README's run-exp on the blank edition: the unwritten CNN, not a configuration that cannot work."
    res = venv.run("-m", f"{PACKAGE}.experiments", "run-exp", "-n", "test", "-K", "32", "64", "-L", "2", "-P", "2",
                   "-H", "100", "-o", tmp_path / "results", cwd=edition, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr == ("error: `CNN._make_feature_extractor` is not written yet: fill in its `# YOUR CODE HERE` in "
                          "part4_cnn.ipynb, then run nbdev-export\n")
    assert not (tmp_path / "results").exists()


def test_nbdev_clean_keeps_the_nbgrader_metadata(venv, edition, tmp_path):
    folder = tmp_path / "cleaned"
    shutil.copytree(edition, folder)
    before = {n: nbformat.read(folder / n, as_version=4) for n in NOTEBOOKS}
    venv.command("nbdev-clean", cwd=folder)
    for name in NOTEBOOKS:
        after = nbformat.read(folder / name, as_version=4)
        assert [c.metadata.get("nbgrader") for c in after.cells] == [c.metadata.get("nbgrader") for c in before[name].cells]
        assert sum("checksum" in c.metadata.get("nbgrader", {}) for c in after.cells) > 5


def nbgrader_extensions() -> tuple:
    "nbgrader's server extensions (the settings its wheel installs) and JupyterLab plugins (in its lab extension)."
    files = {str(f): f for f in importlib.metadata.files("nbgrader")}
    server = json.loads(files["../../../etc/jupyter/jupyter_server_config.d/nbgrader.json"].read_text())
    lab = {name for f in files.values() if str(f).endswith(".js") and "labextensions" in str(f)
           for name in re.findall(r'"(@jupyter/nbgrader:[\w-]+)"', f.read_text())}
    return set(server["ServerApp"]["jpserver_extensions"]), lab


def test_jupyter_setup_keeps_validate_and_turns_the_instructor_tools_off(venv, edition, tmp_path):
    """JupyterLab started in the edition folder (`jupyter lab`, the README's step after `pip install -e .` and
    `python -m hw2.jupyter_setup`): nbgrader's Validate, none of its instructor tools or exchange lists."""
    server, lab = nbgrader_extensions()
    validate = ("nbgrader.server_extensions.validate_assignment", "@jupyter/nbgrader:validate-assignment")
    assert validate[0] in server and validate[1] in lab and {"@jupyter/nbgrader:formgrader"} < lab
    venv.add_data_files("nbgrader", "jupyterlab", "nbconvert")  # what their wheels put into a student's environment
    # routes of nbgrader's server extensions: the formgrader, the exchange's assignment and course lists, validate
    routes = ["/formgrader", "/assignments", "/formgraders", "/assignments/validate"]

    def served(url, token):
        return {route: status(url + route, token) != 404 for route in routes}
    with lab_server(edition, tmp_path / "before", python=venv.python, env=venv.env()) as (url, token):
        assert served(url, token) == dict.fromkeys(routes, True)  # as nbgrader installs itself: everything on
        assert page_config(url, token)["disabledExtensions"] == []
    print(venv.run("-m", f"{PACKAGE}.jupyter_setup", cwd=edition).stdout)
    with lab_server(edition, tmp_path / "after", python=venv.python, env=venv.env()) as (url, token):
        assert served(url, token) == {**dict.fromkeys(routes, False), "/assignments/validate": True}
        config = page_config(url, token)
    assert "@jupyter/nbgrader" in {ext["name"] for ext in config["federated_extensions"]}
    assert set(config["disabledExtensions"]) == lab - {validate[1]}


@pytest.fixture(scope="module")
def finished(course, edition, venv, tmp_path_factory):
    """A copy of the edition with the reference submission's notebooks in it, after the student's `nbdev-export`.
    Run from there, `import hw2` finds that copy's package (the current folder comes first)."""
    folder = tmp_path_factory.mktemp("finished") / edition.name
    shutil.copytree(edition, folder)
    submission = build_submission(course, SAMPLES["reference"])
    for name in NOTEBOOKS:
        nb = nbformat.read(submission / name, as_version=4)
        nbformat.write(edition_notebook(nb, PACKAGE), folder / name)
    venv.command("nbdev-export", cwd=folder)
    res = venv.run("-c", f"import {PACKAGE}; print({PACKAGE}.__file__)", cwd=folder)
    assert Path(res.stdout.strip()).parent == folder / PACKAGE
    return folder


def test_self_check_reports_the_reference_submission_as_complete(venv, finished):
    code, out = selfcheck(venv, finished, "--no-run")
    assert code == 0 and report(out) == {name: [] for name in NOTEBOOKS}, out
    # the grader's limit is 180 s a cell; on a busy machine the training cells of the full run take longer
    code, out = selfcheck(venv, finished, *QUICK, *(["--timeout", "900"] if FULL else []))
    assert code == 0 and report(out) == {name: [] for name in QUICK}, out
    assert "ready to submit" in out


def test_every_import_of_the_finished_notebooks_resolves(venv, finished):
    "What the notebooks import from the package exists once the student exported their work (the later parts)."
    imports = []
    for name in NOTEBOOKS:
        for cell in nbformat.read(finished / name, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse("\n".join(l for l in cell.source.splitlines() if not l.startswith(("%", "!"))))):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and ast.unparse(node).split()[1].startswith(PACKAGE):
                    imports.append(ast.unparse(node))
    assert len(imports) > 10
    venv.run("-c", "\n".join(sorted(set(imports))), cwd=finished)


def test_self_check_sees_a_stale_package_and_changed_given_cells(venv, finished, tmp_path):
    folder = tmp_path / "stale"
    shutil.copytree(finished, folder)
    module = folder / PACKAGE / "layers.py"
    module.write_text(module.read_text().replace("class Sigmoid", "class Sigmoid2"))
    path = folder / "part2_optimizers.ipynb"
    nb = nbformat.read(path, as_version=4)
    given = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked") and c.cell_type == "code"
                 and not c.source.startswith("#|"))  # a given cell that is not exported
    given.source += "\nx = 1"
    nbformat.write(nb, path)
    code, out = selfcheck(venv, folder, "--no-run", "part1_backprop.ipynb", "part2_optimizers.ipynb")
    assert code == 1
    left = report(out)
    assert left["part1_backprop.ipynb"] == [f"{PACKAGE}/layers.py out of step with the notebook: run `nbdev-export`"]
    assert left["part2_optimizers.ipynb"] == ["given cells changed (the grader puts them back as they were): "
                                              + given.metadata["nbgrader"]["grade_id"]]


def test_autograding_a_notebook_of_the_edition_restores_the_course_imports(course, finished):
    "nbgrader autograde's first step puts the gradebook's locked cells back: the graded imports are dlcourse's again."
    from nbgrader.preprocessors import OverwriteCells
    for name in NOTEBOOKS:
        nb = nbformat.read(finished / name, as_version=4)
        resources = {"nbgrader": {"notebook": Path(name).stem, "assignment": AID,
                                  "db_url": f"sqlite:///{course.gradebook_path}"}}
        graded, _ = OverwriteCells().preprocess(nb, resources)
        source = {c.metadata["nbgrader"]["grade_id"]: c.source  # what the gradebook holds (hidden tests included)
                  for c in nbformat.read(course.source / name, as_version=4).cells if "nbgrader" in c.metadata}
        for cell in graded.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("locked"):
                assert cell.source == source[meta["grade_id"]], (name, meta["grade_id"])
            if cell.cell_type == "code":
                assert not re.search(rf"^\s*(from|import)\s+{PACKAGE}\b", cell.source, re.MULTILINE), cell.source
