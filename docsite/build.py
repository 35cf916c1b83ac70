"""Build the site: execute, process with nbdev, write the API reference, render with Sphinx, check for leaks."""
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme

from .leaks import check_site
from .procs import MODES, api_label

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
GUIDES = ROOT / "guide"         # pages written in markdown: the instructor's guide
WORK = ROOT / "build" / "docs"  # executed notebooks (a cache), Sphinx sources and doctrees
PROC = ROOT / "_proc"           # where nbdev-proc-nbs writes
OUT = ROOT / "docs"
KEEP = {"README.md"}            # docs/README.md is committed; everything else in docs/ is generated


class DocsError(Exception):
    "A problem that stops the build; the message says what to do."


def notebooks() -> list:
    """Every notebook in nbs/: the home page (index), the course parts in the assignment's order (settings.ini, then
    any other part*), then the library chapters."""
    from grader.course import load_settings
    nbs = sorted(NBS.glob("*.ipynb"))
    if not any(p.stem == "index" for p in nbs):
        raise DocsError(f"{NBS / 'index.ipynb'} is missing: it is the site's home page")
    order = {part: i for i, part in enumerate(load_settings().parts)}
    return sorted(nbs, key=lambda p: (p.stem != "index", not p.stem.startswith("part"), order.get(p.stem, len(order)),
                                      p.stem))


def title(nb) -> str:
    "A notebook's first heading."
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise DocsError("a notebook without a `# Title` heading")


def without_hidden_tests(nb):
    "`nb` as nbgrader's solution version has it: hidden tests and mark schemes removed from its nbgrader cells."
    resources = {"language": "python"}
    for i, cell in enumerate(nb.cells):
        if "nbgrader" in cell.metadata:
            for step in (ClearHiddenTests(), ClearMarkScheme(enforce_metadata=False)):  # rubrics of written answers
                step.preprocess_cell(cell, resources, i)
    return nb


def _library_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "dlcourse").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(ROOT).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _skipped_by_nbdev_test(cell) -> bool:
    "A cell flagged with one of nbdev's `tst_flags` (`#| notest`): too slow for the tests, so not run here either."
    from nbdev.config import get_config
    flags = str(get_config().get("tst_flags", "")).split()
    return cell.cell_type == "code" and any(re.search(rf"^#\|\s*{re.escape(f)}\b", cell.source, re.M) for f in flags)


def _execute(src: Path, dst: Path, key: str, timeout: int):
    from nbclient import NotebookClient  # in the worker process
    nb = without_hidden_tests(nbformat.read(src, as_version=4))
    skipped = [c for c in nb.cells if _skipped_by_nbdev_test(c)]
    for cell in skipped:
        cell.metadata.setdefault("tags", []).append("skip-execution")
    start = time.monotonic()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(NBS)}}).execute()
    except Exception as e:  # the cell and its error, without the notebook's outputs so far
        raise DocsError(f"{src.name} failed to run; fix it (nbdev-test {src}), or run fewer at a time "
                        f"(--workers 1):\n{e}") from None
    for cell in skipped:
        cell.metadata["tags"].remove("skip-execution")
    nb.metadata["dlcourse_docs"] = {"key": key}
    nbformat.write(nb, dst)
    return src.name, time.monotonic() - start


def execute(paths, workers=2, timeout=600, log=print) -> Path:
    """Run each notebook with its solutions and without its hidden tests, into WORK/executed.

    A notebook is run again only when it or the library changed. Plots are static (no widgets), and the data is
    the embedded CIFAR-10 sample.
    """
    out = WORK / "executed"
    out.mkdir(parents=True, exist_ok=True)
    lib = _library_digest()
    todo = []
    for src in paths:
        key = hashlib.sha256((lib + src.read_text()).encode()).hexdigest()
        dst = out / src.name
        if dst.exists() and nbformat.read(dst, as_version=4).metadata.get("dlcourse_docs", {}).get("key") == key:
            continue
        todo.append((src, dst, key))
    for stale in set(out.glob("*.ipynb")) - {out / p.name for p in paths}:
        stale.unlink()
    if todo:
        os.environ["DLCOURSE_STATIC_PLOTS"] = "1"
        os.environ.pop("DLCOURSE_CIFAR10", None)
        os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        # one kernel per worker, its share of the cores each: more threads than cores makes torch crawl
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
        log(f"running {len(todo)} notebook(s) with {workers} worker(s): {' '.join(s.stem for s, _, _ in todo)}")
        with ProcessPoolExecutor(workers) as pool:
            for name, secs in pool.map(_execute, *zip(*todo), [timeout] * len(todo)):
                log(f"  ran {name} in {secs:.0f} s")
    return out


def process(executed: Path, mode: str) -> Path:
    """nbdev's own doc processing of the executed notebooks, with docsite.procs for `mode`, into _proc/.

    This is what `nbdev-proc-nbs` runs (`nbdev.serve.proc_nbs`), without the command's quarto steps: it would try
    to download quarto and write quarto's files into nbs/.
    """
    from nbdev.serve import proc_nbs
    os.environ["DLCOURSE_DOCS_MODE"] = mode  # the processors run in worker processes, which inherit it
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # and import docsite.procs from here
    try:
        return proc_nbs(str(executed), force=True)
    except Exception as e:
        raise DocsError(f"nbdev's doc processing failed: {e}") from e


def _chapter_of_names() -> dict:
    """`module.name` -> the notebook that defines it, for names a notebook adds to another chapter's module
    (`#| export experiments` in Part 5)."""
    from .procs import _defined
    pages = {}
    for path in notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            m = re.match(r"#\|[ \t]*export[ \t]+(\w+)[ \t]*$", cell.source, re.MULTILINE) \
                if cell.cell_type == "code" else None
            if m:
                pages.update({f"dlcourse.{m.group(1)}.{n}": path.stem for n in _defined(cell.source)})
    return pages


def _chapter_of_modules() -> dict:
    "module -> the notebook that writes it (its `#| default_exp`)."
    pages = {}
    for path in notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            m = re.match(r"#\|\s*default_exp\s+(\S+)", cell.source) if cell.cell_type == "code" else None
            if m:
                pages[f"dlcourse.{m.group(1)}"] = path.stem
    return pages


def _short_repr(obj, width=100) -> str:
    text = " ".join(repr(obj).split())
    return text if len(text) <= width else text[:width - 4] + " ..."


def api_pages(src: Path, titles: dict) -> list:
    "One reference page per module: every name of its `__all__` with signature and docstring, linked to its chapter."
    chapters, elsewhere = _chapter_of_modules(), _chapter_of_names()
    (src / "api").mkdir()
    pages = []
    for module_name in sorted(chapters):
        module = importlib.import_module(module_name)
        chapter = chapters[module_name]
        lines = [f"# `{module_name}`", "",
                 f"Written in the chapter {{doc}}`{titles[chapter]} <../{chapter}>`.", "", "```{eval-rst}"]
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type):
                lines += [f".. autoclass:: {module_name}.{name}", "   :members:", "   :show-inheritance:"]
            elif callable(obj):
                lines += [f".. autofunction:: {module_name}.{name}"]
            else:  # a constant: its value (autodata would show the docstring of its type)
                lines += [f".. py:data:: {module_name}.{name}", f"   :value: {_short_repr(obj)}"]
            where = elsewhere.get(f"{module_name}.{name}", chapter)
            lines += ["", f"   Defined in :ref:`{titles[where]} <{api_label(f'{module_name}.{name}')}>`.", ""]
        lines += ["```", ""]
        (src / "api" / f"{module_name}.md").write_text("\n".join(lines))
        pages.append(f"api/{module_name}")
    return pages


def _toctree(caption, entries):
    return "\n".join(["```{toctree}", f":caption: {caption}", ":maxdepth: 1", "", *entries, "```"])


def sources(processed: Path, mode: str) -> Path:
    "The Sphinx source folder: the processed notebooks, the guides, the API pages, and the lists on the home page."
    src = WORK / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for image in (p for ext in ("png", "jpg", "jpeg", "gif", "svg") for p in NBS.rglob(f"*.{ext}")):
        (src / image.relative_to(NBS)).parent.mkdir(parents=True, exist_ok=True)  # pictures the chapters link to
        shutil.copy(image, src / image.relative_to(NBS))
    titles = {}
    for p in notebooks():
        shutil.copy(processed / p.name, src / p.name)
        titles[p.stem] = title(nbformat.read(src / p.name, as_version=4))
    api = api_pages(src, titles)
    guides = []
    for page in sorted(GUIDES.glob("*.md")):
        (src / "guide").mkdir(exist_ok=True)
        shutil.copy(page, src / "guide" / page.name)
        guides.append(f"guide/{page.stem}")
    index = nbformat.read(src / "index.ipynb", as_version=4)
    course = [p.stem for p in notebooks() if p.stem.startswith("part")]
    library = [p.stem for p in notebooks() if p.stem != "index" and not p.stem.startswith("part")]
    index.cells += [nbformat.v4.new_markdown_cell(s) for s in (
        "## Chapters", _toctree("Course", course), _toctree("Guides", guides), _toctree("Library", library),
        _toctree("API reference", api))]
    index.metadata["dlcourse_docs_mode"] = mode
    nbformat.write(index, src / "index.ipynb")
    return src


def render(src: Path, out: Path, mode: str):
    """Sphinx with myst-nb, from the stored outputs, into WORK/html (myst-nb keeps its copies of the notebooks beside
    it, in WORK/jupyter_execute), then copied to `out`. Warnings are errors: a broken reference fails the build."""
    html = WORK / "html"
    shutil.rmtree(html, ignore_errors=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-c", str(ROOT / "docsite"),
           "-d", str(WORK / "doctrees"), str(src), str(html)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "DLCOURSE_DOCS_MODE": mode})
    if res.returncode != 0:
        raise DocsError(f"sphinx-build failed:\n{res.stdout}{res.stderr}")
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():
        if p.name not in KEEP:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    shutil.copytree(html, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("_sources", ".buildinfo"))


def build(mode="student", out=OUT, workers=2, log=print) -> Path:
    "The whole build; returns the site's folder."
    if mode not in MODES:
        raise DocsError(f"mode {mode!r}: use one of {MODES}")
    times, last = {}, time.monotonic()

    def step(name):
        nonlocal last
        times[name], last = time.monotonic() - last, time.monotonic()

    executed = execute(notebooks(), workers=workers, log=log)
    step("run")
    processed = process(executed, mode)
    step("nbdev")
    render(sources(processed, mode), Path(out), mode)
    step("sphinx")
    problems = check_site(Path(out), NBS, mode)
    step("scan")
    if problems:
        raise DocsError("the site shows what its readers must not see:\n  " + "\n  ".join(problems[:20]))
    log(f"{mode} site in {out}/ ({', '.join(f'{k} {v:.0f} s' for k, v in times.items())}): "
        f"open {Path(out) / 'index.html'}")
    return Path(out)
