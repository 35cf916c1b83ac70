"""nbgrader's formgrader for this course: the reference answer and rubric beside each written answer, and MathJax
served by the Jupyter server itself (the MathJax 3 of the sphinx-mathjax-offline wheel), never from a CDN.

A written answer's rubric is a region of its source cell between nbgrader's mark-scheme delimiters
(`<!-- BEGIN MARK SCHEME -->`, `<!-- END MARK SCHEME -->`). The student version replaces the whole answer cell
("YOUR ANSWER HERE") and the solution version drops the region (nbgrader's ClearMarkScheme). nbgrader shows a mark
scheme to graders only in "manually graded task" cells; for answer cells this server extension shows the source
notebook's reference answer and rubric, when formgrader renders a submission and nowhere else (feedback is rendered
by `nbgrader generate_feedback`, which never sees them).

`python -m grader formgrader` starts JupyterLab in the course directory with this extension in place of nbgrader's.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import Unicode

MARK_SCHEME_BEGIN, MARK_SCHEME_END = "BEGIN MARK SCHEME", "END MARK SCHEME"  # nbgrader's ClearMarkScheme delimiters
TEMPLATES = Path(__file__).resolve().parent / "templates"
MATHJAX_URL = "dlcourse/mathjax"  # under the server's base URL
EXTENSION = {"grader.formgrader": True, "nbgrader.server_extensions.formgrader": False}


def split_rubric(source: str) -> tuple:
    "(reference answer, rubric): a written answer's source without its mark-scheme region, and the region's text."
    answer, rubric, inside = [], [], False
    for line in source.splitlines():
        if MARK_SCHEME_BEGIN in line:
            inside = True
        elif MARK_SCHEME_END in line:
            inside = False
        else:
            (rubric if inside else answer).append(line)
    return "\n".join(answer).strip(), "\n".join(rubric).strip()


def is_written_answer(cell) -> bool:
    "A manually graded answer: a markdown cell that is both a solution and a grade cell."
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "markdown" and bool(meta.get("grade")) and bool(meta.get("solution"))


def written_answers(nb) -> dict:
    "grade id -> {points, reference, rubric} of each written answer of a source notebook."
    out = {}
    for cell in filter(is_written_answer, nb.cells):
        reference, rubric = split_rubric(cell.source)
        meta = cell.metadata.nbgrader
        out[meta["grade_id"]] = {"points": meta["points"], "reference": reference, "rubric": rubric}
    return out


RUBRIC_ITEM = re.compile(r"^\s*[-*]\s+\**(\d+(?:\.\d+)?) points?\b", re.M)


def rubric_points(rubric: str) -> float:
    "The points of a rubric: the sum of its items, each a list item that starts with `N point(s)`."
    return sum(float(p) for p in RUBRIC_ITEM.findall(rubric))


class ReferenceAnswers(Preprocessor):
    "Put the reference answer and rubric of each written answer in `resources` (formgrader's pages only)."
    source_dir = Unicode(help="nbgrader's source folder: <source_dir>/<assignment>/<notebook>.ipynb")

    def preprocess(self, nb, resources):
        path = Path(self.source_dir) / resources["assignment_id"] / f"{resources['notebook_id']}.ipynb"
        resources["reference_answers"] = written_answers(nbformat.read(path, as_version=4)) if path.exists() else {}
        return nb, resources


def _jupyter_server_extension_points():
    return [{"module": "grader.formgrader"}]


def _load_jupyter_server_extension(serverapp):
    "nbgrader's formgrader, rendering submissions with this course's template, and the local MathJax."
    from jupyter_server.base.handlers import AuthenticatedFileHandler
    from jupyter_server.utils import url_path_join
    from nbgrader.server_extensions.formgrader import formgrader, handlers

    from grader.course import mathjax_dir  # grader.course imports this module

    formgrader.load_jupyter_server_extension(serverapp)
    webapp = serverapp.web_app
    ext = webapp.settings["nbgrader_formgrader"]
    exporter = HTMLExporter(config=ext.config, template_name="dlcourse_formgrade",
                            extra_template_basedirs=[str(TEMPLATES), handlers.template_path],
                            extra_template_paths=[handlers.template_path])
    source = Path(ext.coursedir.root) / ext.coursedir.source_directory
    exporter.register_preprocessor(ReferenceAnswers(source_dir=str(source)), enabled=True)
    webapp.settings["nbgrader_exporter"] = exporter
    webapp.add_handlers(".*$", [(url_path_join(webapp.settings["base_url"], MATHJAX_URL, "(.*)"),
                                 AuthenticatedFileHandler, {"path": str(mathjax_dir())})])


def server_command(course_root: Path, port: int = 0, token: str = None, browser: bool = True) -> list:
    "JupyterLab serving the course directory, with this formgrader in place of nbgrader's."
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={course_root}",
           *(f"--ServerApp.jpserver_extensions={name}={on}" for name, on in EXTENSION.items()),
           f"--ServerApp.open_browser={browser}"]
    if os.geteuid() == 0:  # containers
        cmd.append("--allow-root")
    if port:
        cmd.append(f"--ServerApp.port={port}")
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    return cmd


def server_env() -> dict:
    "The environment of the server: `grader` importable (the extension lives here)."
    from grader.course import ROOT, tools_path
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PATH": tools_path()}


def serve(course, port: int = 0, browser: bool = True) -> int:
    "Run JupyterLab with the formgrader in the course directory until interrupted (`python -m grader formgrader`)."
    print("formgrader: in JupyterLab, Nbgrader menu > Formgrader (or <the URL below>/formgrader); stop with Ctrl-C")
    try:
        return subprocess.run(server_command(course.root, port, browser=browser), cwd=course.root,
                              env=server_env()).returncode
    except KeyboardInterrupt:
        return 0
