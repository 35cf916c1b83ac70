"""nbdev doc processors (named in `doc_procs` of pyproject.toml): what a chapter page shows.

`nbdev-proc-nbs` runs nbdev's own processors, then these. The mode comes from `DLCOURSE_DOCS_MODE`:
`student` (the default) shows each exercise as nbgrader's student version does, a stub, and each written
question without its reference answer; `instructor` shows the solutions and reference answers. Neither shows a
hidden test.
"""
import ast
import os
import re

from pathlib import Path

from fastcore.nbio import mk_cell
from nbdev.process import Processor
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearSolutions
from nbgrader.utils import is_solution

MODES = ("student", "instructor")
LIB = Path(__file__).resolve().parent.parent / "dlcourse"


def docs_mode() -> str:
    "The site being built: `student` or `instructor` (from `DLCOURSE_DOCS_MODE`)."
    mode = os.environ.get("DLCOURSE_DOCS_MODE", "student")
    if mode not in MODES:
        raise ValueError(f"DLCOURSE_DOCS_MODE={mode!r}: use one of {MODES}")
    return mode


class grading_view(Processor):
    "nbgrader's own preprocessors on every nbgrader cell: no hidden tests, and stubs on the student site."
    def begin(self):
        self.student = docs_mode() == "student"
        self.resources = {"language": "python"}
        # enforce_metadata: written answers hold their rubric in a mark-scheme region (grader/formgrader.py)
        self.steps = [ClearHiddenTests(), ClearMarkScheme(enforce_metadata=False)] + \
            ([ClearSolutions()] if self.student else [])

    def cell(self, cell):
        if "nbgrader" not in cell.metadata:
            return
        solution = is_solution(cell)
        for step in self.steps:
            step.preprocess_cell(cell, self.resources, cell.idx_)
        if self.student and solution and cell.cell_type == "code":
            cell.outputs = []  # what the reference code printed is no stub's output
        cell.metadata.pop("nbgrader")


_re_directive = re.compile(r"^#\|.*(?:\n|$)", re.MULTILINE)


def drop_directives(cell):
    "Remove the `#| default_exp` cell and the `#| export` lines: the page shows the code, not nbdev's bookkeeping."
    if cell.cell_type != "code":
        return
    if "default_exp" in cell.directives_:
        del cell["source"]
    else:
        cell.source = _re_directive.sub("", cell.source)


def _public(name):
    "`__all__` of the module `dlcourse.{name}`, read from the exported file (no import: no torch)."
    tree = ast.parse((LIB / f"{name.replace('.', '/')}.py").read_text())
    return set(next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                     and any(getattr(t, "id", None) == "__all__" for t in node.targets)), []))


def _module(nb):
    "(module name, its `__all__`) for the module the notebook writes (its `#| default_exp`)."
    for cell in nb.cells:
        if cell.cell_type == "code" and "default_exp" in cell.directives_:
            name = cell.directives_["default_exp"].split()[0]
            return f"dlcourse.{name}", _public(name)
    return None, set()


def _defined(source: str) -> list:
    "Top-level names a code cell defines."
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return names


def api_label(qualname: str) -> str:
    "The anchor of the place a chapter defines `qualname` (the API reference links to it)."
    return f"defined-{qualname}"


class api_anchors(Processor):
    "Before each exported definition: an anchor the API reference links to, and a link to its API entry."
    def begin(self):
        module, public = _module(self.nb)
        for cell in reversed(list(self.nb.cells)):
            if cell.cell_type != "code" or "export" not in cell.directives_:
                continue
            to = cell.directives_["export"]  # `#| export experiments`: a cell added to another chapter's module
            to = (to.split() if isinstance(to, str) else list(to))[:1]
            cell_module, cell_public = (f"dlcourse.{to[0]}", _public(to[0])) if to else (module, public)
            names = [n for n in _defined(cell.source) if n in cell_public]
            if names:
                targets = "".join(f"({api_label(f'{cell_module}.{n}')})=\n" for n in names)
                links = ", ".join(f"{{py:obj}}`~{cell_module}.{n}`" for n in names)
                self.nb.cells.insert(cell.idx_, mk_cell(f"{targets}API reference: {links}", "markdown"))
