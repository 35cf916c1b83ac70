"""`python -m grader import`: submissions in the course's own format, its `hw2/*.py` modules, as notebooks of ours.

The course's students hand in a zip (`main.py prepare-submission`) with the modules `hw2/<module>.py`. Each
top-level definition of those modules goes into the solution cell of our notebooks that defines the same name; the
rest of the notebook is the student version's. What cannot be placed is reported, never dropped silently:

* a definition no solution cell has: placed beside the first placed definition that uses it (a helper), or listed
  as not placed;
* a definition the course gives (our notebooks give it too): ours is kept;
* a name a solution cell defines that the submission lacks: the cell keeps the student version's stub;
* a module missing from the submission, or one that does not parse.

The modules' imports come along with their definitions, rewritten from the course's package names (`hw2`,
`cs236781`, relative imports) to ours.
"""
import ast
import copy
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from dlcourse.authoring import strip_markers

# The course's modules, each answered by definitions in these notebooks (settings.ini's parts)
MODULES = ("layers", "optimizers", "training", "mlp", "classifier", "cnn", "experiments", "answers")
# Where the course's helper package's names live in ours
RENAMED_MODULES = {"cs236781.train_results": "dlcourse.training", "cs236781.plot": "dlcourse.plot",
                   "cs236781.dataloader_utils": "dlcourse.datasets", "cs236781": "dlcourse"}
# The course's given code that fails on today's libraries, and what it means there
LIBRARY_FIXES = {"plt.cm.get_cmap(": "plt.get_cmap(", "matplotlib.cm.get_cmap(": "matplotlib.pyplot.get_cmap("}


@dataclass
class ImportReport:
    student: str
    placed: dict = field(default_factory=dict)  # "<part>/<cell>" -> names placed there
    helpers: dict = field(default_factory=dict)  # helper name -> the definition it was placed with
    not_placed: list = field(default_factory=list)  # "module.name: why"
    given: list = field(default_factory=list)  # course-given definitions: ours kept
    missing: list = field(default_factory=list)  # "<part>/<cell>: name" kept as the stub
    problems: list = field(default_factory=list)  # missing modules, syntax errors
    fixes: list = field(default_factory=list)  # given code rewritten for today's libraries

    def __str__(self):
        lines = [f"{self.student}: {sum(len(v) for v in self.placed.values())} definitions placed in "
                 f"{len(self.placed)} cells"]
        sections = [("problems", self.problems), ("not placed", self.not_placed),
                    ("helpers placed with the definitions that use them",
                     [f"{h} (with {d})" for h, d in self.helpers.items()]),
                    ("given in our notebooks, ours kept", self.given),
                    ("not in the submission, the stub kept", self.missing),
                    ("given code fixed for today's libraries", self.fixes)]
        for title, items in sections:
            if items:
                lines += [f"  {title}:"] + [f"    {item}" for item in items]
        return "\n".join(lines)


def _defined_names(node) -> list:
    "The names a top-level statement defines (a def, a class, or assignments to plain names)."
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [t.id for t in targets if isinstance(t, ast.Name)]
    return []


def _segments(source: str) -> list:
    "(names, statement source, statement) for each top-level statement of `source`, decorators included."
    tree, lines = ast.parse(source), source.splitlines()
    out = []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        out.append((_defined_names(node), "\n".join(lines[start:node.end_lineno]), node))
    return out


def _used_names(node) -> set:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _rewrite_import(node, module_name: str):
    "The import statement with the course's package names replaced by ours; None for `from __future__`."
    if isinstance(node, ast.ImportFrom):
        if node.module == "__future__":
            return None
        if node.level:  # from .mlp import MLP
            target = f"dlcourse.{node.module}" if node.module else "dlcourse"
        else:
            target = re.sub(r"^hw2\b", "dlcourse", node.module or "")
            target = next((new for old, new in RENAMED_MODULES.items()
                           if target == old or target.startswith(old + ".")), target) \
                if target.startswith("cs236781") else target
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
        return f"from {target} import {names}"
    parts = []
    for a in node.names:
        name = re.sub(r"^hw2\b", "dlcourse", a.name)
        name = RENAMED_MODULES.get(name, name)
        parts.append(name + (f" as {a.asname}" if a.asname else ""))
    return "import " + ", ".join(parts)


def _export_module(nb, cell):
    "The library module an exported cell goes to (`#| export [module]`, else the notebook's `#| default_exp`)."
    default = next((m.group(1) for c in nb.cells if c.cell_type == "code"
                    for m in [re.search(r"^#\|\s*default_exp\s+(\S+)", c.source, re.M)] if m), None)
    m = re.search(r"^#\|\s*export(?:s)?\b[ \t]*(\S*)", cell.source, re.M)
    return (m.group(1) or default) if m else None


def solution_cells(notebooks: dict, module: str = None) -> dict:
    """name -> (part, grade id) for every name a code solution cell defines (those exported to `module` first), and
    grade id -> markdown answer cells."""
    where = {}
    cells = [(part, nb, cell) for part, nb in notebooks.items() for cell in nb.cells]
    for part, nb, cell in sorted(cells, key=lambda pc: _export_module(pc[1], pc[2]) != module):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        if cell.cell_type == "markdown":
            where[meta["grade_id"]] = (part, meta["grade_id"])
            continue
        for names, _, _ in _segments(_without_directives(strip_markers(cell.source))):
            for name in names:
                where.setdefault(name, (part, meta["grade_id"]))
    return where


def given_names(notebooks: dict) -> set:
    "Names the notebooks' given (non-solution) code cells define: the course's given code."
    names = set()
    for nb in notebooks.values():
        for cell in nb.cells:
            if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("solution"):
                try:
                    names |= {n for ns, _, _ in _segments(_without_directives(cell.source)) for n in ns}
                except SyntaxError:
                    pass
    return names


def _without_directives(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.startswith(("#|", "%", "!")))


def place(modules: dict, notebooks: dict, student: str = "student") -> tuple:
    """Place the definitions of `modules` (module name -> source of `hw2/<module>.py`) in the solution cells of
    `notebooks` (part -> notebook). Returns ({part: {grade_id: new cell source}}, ImportReport)."""
    report = ImportReport(student)
    given_in = {part: given_names({part: nb}) for part, nb in notebooks.items()}
    given = set().union(*given_in.values())
    cells = {}  # (part, gid) -> list of (name, source) placed, in the submission's order
    imports = {}  # (part, gid) -> import lines
    for module in MODULES:
        if module not in modules:
            report.problems.append(f"hw2/{module}.py is missing from the submission")
            continue
        source = modules[module]
        for old, new in LIBRARY_FIXES.items():
            if old in source:
                source = source.replace(old, new)
                report.fixes.append(f"hw2/{module}.py: {old.rstrip('(')} -> {new.rstrip('(')}")
        try:
            segments = _segments(source)
        except SyntaxError as e:
            report.problems.append(f"hw2/{module}.py does not parse (line {e.lineno}: {e.msg}); nothing of it placed")
            continue
        module_imports = [line for _, _, node in segments if isinstance(node, (ast.Import, ast.ImportFrom))
                          if (line := _rewrite_import(node, module))]
        targets, helpers, where = {}, [], solution_cells(notebooks, module)
        for names, text, node in segments:
            if not names:
                continue
            if isinstance(node, ast.Assign) and names[0] == "__all__":
                continue
            if names[0] in where and _is_answer(notebooks, where[names[0]]) and isinstance(node, ast.Assign):
                # an answer string such as part1_q1 = r"""..."""
                targets.setdefault(where[names[0]], []).append((names[0], ast.literal_eval(node.value)))
            elif names[0] in where:
                targets.setdefault(where[names[0]], []).append((names[0], text))
            elif names[0] in given:
                report.given.append(f"{module}.{names[0]}")
            else:
                helpers.append((names[0], text, node))
        for key, defs in targets.items():
            cells.setdefault(key, []).extend(defs)
            imports.setdefault(key, [])
            imports[key] += [line for line in module_imports if line not in imports[key]]
        module_names = {n for names, _, _ in segments for n in names}
        _import_from_other_notebooks(module, module_names, targets, imports, notebooks, given_in)
        # helpers go with the first placed definition that uses them (directly or through another helper)
        placed_sources = {name: (key, _used_names(ast.parse(text))) for key, defs in targets.items()
                          for name, text in defs if not _is_answer(notebooks, key)}
        for name, text, node in helpers:
            user = next((n for n, (_, used) in placed_sources.items() if name in used and n != name), None)
            if user is None:
                report.not_placed.append(f"{module}.{name}: no solution cell defines it and no placed definition uses it")
                continue
            key = placed_sources[user][0]
            cells[key].insert(0, (name, text))
            placed_sources[name] = (key, _used_names(node))
            report.helpers[f"{module}.{name}"] = user
    return _cell_sources(notebooks, cells, imports, report), report


def _import_from_other_notebooks(module, module_names, targets, imports, notebooks, given_in):
    """A definition placed in one notebook may use a name of its module that another notebook defines (Part 5's
    YourCNN uses Part 4's blocks): it is imported from the package, as the notebooks' exports make it. `given_in`:
    part -> the names its given cells define."""
    code = {key: defs for key, defs in targets.items() if not _is_answer(notebooks, key)}
    placed_in = {name: key[0] for key, defs in code.items() for name, _ in defs}
    given = set().union(*given_in.values())
    for key, defs in code.items():
        here = given_in[key[0]] | {n for n, part in placed_in.items() if part == key[0]}
        used = set().union(*(_used_names(ast.parse(text)) for _, text in defs)) & module_names
        elsewhere = sorted(n for n in used - here if n in placed_in or n in given)
        line = f"from dlcourse.{module} import {', '.join(elsewhere)}" if elsewhere else None
        if line and line not in imports[key]:
            imports[key].append(line)


def _is_answer(notebooks, key) -> bool:
    part, gid = key
    return any(c.cell_type == "markdown" for c in notebooks[part].cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _cell_sources(notebooks, cells, imports, report) -> dict:
    "The new source of each solution cell that received definitions; stubs kept for the names it lacks."
    out = {}
    for (part, gid), defs in cells.items():
        cell = next(c for c in notebooks[part].cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
        report.placed[f"{part}/{gid}"] = [name for name, _ in defs]
        if cell.cell_type == "markdown":
            out.setdefault(part, {})[gid] = defs[-1][1]
            continue
        directives = [line for line in cell.source.splitlines() if line.startswith("#|")]
        theirs = {name for name, _ in defs}
        lacking = [(names, text) for names, text, _ in _segments(_without_directives(strip_markers(cell.source)))
                   if names and not set(names) & theirs]
        kept = [text for _, text in lacking]
        report.missing += [f"{part}/{gid}: {', '.join(names)}" for names, _ in lacking]
        body = "\n\n".join([*(["\n".join(imports[(part, gid)])] if imports[(part, gid)] else []),
                            *(text for _, text in defs), *kept])
        out.setdefault(part, {})[gid] = "\n".join(directives + [body])
    return out


def read_submission(path) -> dict:
    """module name -> source of `hw2/<module>.py` in a folder or zip (a path or an open file; the modules may sit under
    a top folder)."""
    if not isinstance(path, io.IOBase):
        path = Path(path)
    if isinstance(path, Path) and path.is_dir():
        files = {p.relative_to(path).as_posix(): p.read_text(errors="replace") for p in path.rglob("*.py")}
    else:
        with zipfile.ZipFile(path) as z:
            files = {n: z.read(n).decode(errors="replace") for n in z.namelist() if n.endswith(".py")}
    modules = {}
    for name, text in sorted(files.items(), key=lambda kv: kv[0].count("/")):
        m = re.search(r"(?:^|/)hw2/(\w+)\.py$", name)
        if m and m.group(1) in MODULES:
            modules.setdefault(m.group(1), text)
    return modules


def submissions_in(path: Path) -> dict:
    """student -> a submission (folder, zip path, or an in-memory zip) found at `path`: a course submission itself,
    or a folder or zip of them (an LMS download). The student id is the zip's or folder's name, less `hw2-`."""
    path = Path(path)
    student = lambda name: re.sub(r"^hw\d-", "", Path(name).stem)
    if path.is_dir():
        if (path / "hw2").is_dir():
            return {student(path.name): path}
        return {k: v for p in sorted(path.iterdir()) if p.is_dir() or p.suffix == ".zip"
                for k, v in submissions_in(p).items()}
    with zipfile.ZipFile(path) as z:
        inner = [n for n in z.namelist() if n.endswith(".zip")]
        if inner and not any(re.search(r"(?:^|/)hw2/\w+\.py$", n) for n in z.namelist()):
            return {student(n): io.BytesIO(z.read(n)) for n in inner}
    return {student(path.name): path}


def import_submissions(course, path: Path, out=print) -> list:
    "Write each course-format submission at `path` to `submitted/<student>/<assignment>/`; the reports."
    release = {part: nbformat.read(course.release / f"{part}.ipynb", as_version=4) for part in course.settings.parts}
    reports = []
    for student, sub in submissions_in(path).items():
        try:
            modules = read_submission(sub)
        except zipfile.BadZipFile:
            report = ImportReport(student, problems=["not a zip file: skipped"])
            out(str(report))
            reports.append(report)
            continue
        sources, report = place(modules, release, student)
        dest = course.submitted(student)
        dest.mkdir(parents=True, exist_ok=True)
        for part, nb in release.items():
            nb = copy.deepcopy(nb)
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid in sources.get(part, {}):
                    cell.source = sources[part][gid]
            nbformat.write(nb, dest / f"{part}.ipynb")
        out(str(report))
        reports.append(report)
    return reports
