"""What the site must not show, taken from the notebooks' own grading regions, and a scan of every built file."""
import html
import importlib.util
import re
from pathlib import Path

import nbformat

from dlcourse.authoring import HIDDEN_BEGIN, HIDDEN_END, given_lines, remove_hidden_tests, solution_lines


def _lines(text) -> set:
    return {line.strip() for line in text.splitlines()} - {""}


def _distinctive(line: str) -> bool:
    "Long enough to be the solution's own and not a coincidence (`else:`, `)`, `return x`)."
    return len(line) >= 8 and len(re.findall(r"\w+", line)) >= 2


def secrets(nbs: Path, mode: str = "student"):
    """(forbidden, visible): forbidden maps each line the site must not show to where it comes from (each hidden-test
    line and, on the student site, each solution line and each line of a reference answer), less every line a reader
    is meant to see anywhere in the notebooks; visible is the set of those."""
    secret, visible = {}, set()
    for path in sorted(Path(nbs).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            grading = cell.metadata.get("nbgrader", {})
            if not grading:
                visible |= _lines(cell.source)
                continue
            shown = remove_hidden_tests(cell.source) if cell.cell_type == "code" else cell.source
            for line in _lines(cell.source) - _lines(shown) - {HIDDEN_BEGIN, HIDDEN_END}:
                secret[line] = f"{path.name}: hidden test in {grading['grade_id']}"
            if mode == "student" and grading.get("solution"):
                if cell.cell_type == "code":
                    hidden = _lines("\n".join(solution_lines(shown)))
                    visible |= _lines("\n".join(given_lines(shown)))
                else:
                    hidden = _lines(shown)
                for line in hidden:
                    secret[line] = f"{path.name}: solution in {grading['grade_id']}"
            else:
                visible |= _lines(shown)
    return {line: where for line, where in secret.items() if line not in visible and _distinctive(line)}, visible


def forbidden_lines(nbs: Path, mode: str = "student") -> dict:
    "line -> where it comes from, for each line the site must not show."
    return secrets(nbs, mode)[0]


def page_text(markup: str) -> str:
    "The text of an HTML page, line by line as a browser's copy would give it (tags dropped, entities decoded)."
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _is_mathjax_as_shipped(path: Path, site: Path) -> bool:
    rel = path.relative_to(site).parts
    if rel[:2] != ("_static", "mathjax"):
        return False
    shipped = Path(importlib.util.find_spec("sphinx-mathjax-offline").origin).parent / "static" / "mathjax"
    original = shipped.joinpath(*rel[2:])
    return original.is_file() and original.read_bytes() == path.read_bytes()


def check_site(site: Path, nbs: Path, mode: str = "student") -> list:
    """Problems found in any file of `site`: a forbidden line as a whole line of a page's text (or of any other
    text file), or a long forbidden line anywhere inside any file."""
    forbidden, visible = secrets(nbs, mode)
    shown = "\n".join(visible)  # a long secret line may still be part of a longer visible one
    long = [line for line in forbidden if len(line) >= 24 and line not in shown]
    problems = []
    for path in sorted(p for p in Path(site).rglob("*") if p.is_file()):
        if _is_mathjax_as_shipped(path, site):
            continue  # byte for byte the MathJax of the sphinx-mathjax-offline wheel: no course text in it
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".html":
            text = page_text(text)
        found = (_lines(text) & forbidden.keys()) | {line for line in long if line in text}
        problems += [f"{path.relative_to(site)} shows {line!r} ({forbidden[line]})" for line in sorted(found)]
    return problems
