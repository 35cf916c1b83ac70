r"""Math renders where students and graders read it, with no network: a feedback page and the release notebooks in
JupyterLab.

The notebooks write their math in plain LaTeX (`\mat` and `\set` were macros only the docs site defined), and
feedback pages load the MathJax that `Course.feedback` copies next to them. Chromium runs with every host name but
this machine's unresolvable, and its log of requests must show none leaving the machine. A page must show as many
typeset formulas as its notebook's markdown holds, none of them an error or an undefined macro and no raw TeX; a
control page with an undefined `\mat` must fail that check. Skips where headless Chromium cannot start.
"""
import json
import re
import shutil
from urllib.parse import urlparse

import nbformat
import pytest

from grader.batch import Batch
from grader.course import MATHJAX_URL, Course, load_settings
from grader.samples import SAMPLES, build_submission
from conftest import chromium
from lab_server import lab_server

pytestmark = pytest.mark.slow  # grades a course; Chromium

SETTINGS = load_settings()
AID = SETTINGS.assignment_id
# the notebooks that used the macros (Question 1 of Part 1 among them)
NOTEBOOKS = ["part1_backprop.ipynb", "part3_mlp.ipynb", "part3_classifier.ipynb"]
FORMULA = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S)
# What MathJax made of the markdown cells (JupyterLab's and nbconvert's): formulas typeset, errors (TeX errors and
# the red text of an undefined macro) and TeX commands left as text (code left out)
MATH_ON_PAGE = r"""
const cells = [...document.querySelectorAll('.jp-RenderedMarkdown, .text_cell_render')];
const text = cells.map(cell => {
    const copy = cell.cloneNode(true);
    copy.querySelectorAll('code, pre').forEach(e => e.remove());
    return copy.textContent;
}).join('\n');
return {typeset: document.querySelectorAll('mjx-container').length,
        errors: document.querySelectorAll(
            'mjx-merror, [data-mjx-error], mjx-container [style*="color: red"], mjx-container [mathcolor="red"]').length,
        raw: text.match(/\\[A-Za-z]+/g) || []};
"""


def formulas(notebook) -> int:
    "How many formulas (`$...$`, `$$...$$`) the notebook's markdown cells hold."
    cells = nbformat.read(notebook, as_version=4).cells
    return sum(len(FORMULA.findall(c.source)) for c in cells if c.cell_type == "markdown")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    "One autograded notebook (the reference's Part 1) and its feedback."
    course = Course(SETTINGS, root=tmp_path_factory.mktemp("course"))
    course.student_version()
    build_submission(course, SAMPLES["reference"], ["part1_backprop"])
    assert Batch(course).grade(["reference"], progress=False) == {"reference": None}
    course.feedback()
    return course


@pytest.fixture(scope="module")
def browser():
    "Headless Chromium that reaches no host but 127.0.0.1 and logs every request it sends."
    yield from chromium("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", log_requests=True,
                        page_load_timeout=120)


def typeset(chrome, url, n, timeout=120) -> dict:
    "Open `url` and wait until MathJax has typeset `n` formulas; what MATH_ON_PAGE finds then."
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    chrome.get(url)
    try:
        WebDriverWait(chrome, timeout, poll_frequency=0.5).until(
            lambda d: d.execute_script(MATH_ON_PAGE)["typeset"] >= n)
    except TimeoutException:
        pytest.fail(f"{url}: {n} formulas never typeset: {chrome.execute_script(MATH_ON_PAGE)}")
    return chrome.execute_script(MATH_ON_PAGE)


def requests_sent(chrome) -> list:
    "The URLs the browser requested since the last call."
    messages = (json.loads(entry["message"])["message"] for entry in chrome.get_log("performance"))
    return [m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"]


def leaving(urls) -> list:
    "The URLs that would leave this machine."
    return [u for u in urls if urlparse(u).scheme not in ("file", "data", "blob") and urlparse(u).hostname != "127.0.0.1"]


def test_feedback_page_typesets_its_math_with_the_shipped_mathjax(course, browser):
    pages = course.root / "feedback" / "reference" / AID
    page, mathjax = pages / "part1_backprop.html", pages / MATHJAX_URL
    n = formulas(course.root / "autograded" / "reference" / AID / "part1_backprop.ipynb")
    assert n > 50  # the chapter's and Question 1's answer
    requests_sent(browser)
    assert typeset(browser, page.as_uri(), n) == {"typeset": n, "errors": 0, "raw": []}
    sent = requests_sent(browser)
    assert mathjax.as_uri() in sent and leaving(sent) == [], sent

    control = pages / "control.html"  # the notebook as it was, with the docs site's macro
    control.write_text(page.read_text().replace(r"\boldsymbol{", r"\mat{"))
    assert typeset(browser, control.as_uri(), n)["errors"] > 0


def test_release_notebooks_typeset_their_math_offline_in_jupyterlab(course, browser, tmp_path):
    folder = tmp_path / "release"
    shutil.copytree(course.release, folder)
    control = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(r"An undefined macro: $\mat{X}$")])
    nbformat.write(control, folder / "control.ipynb")
    with lab_server(folder, tmp_path / "jupyter") as (url, token):
        requests_sent(browser)
        for name in NOTEBOOKS:
            n = formulas(folder / name)
            assert n > 0, name
            # a workspace of its own, reset: the page shows this notebook alone
            page = f"{url}/lab/workspaces/{name.split('.')[0]}/tree/{name}?reset&token={token}"
            assert typeset(browser, page, n) == {"typeset": n, "errors": 0, "raw": []}, name
        control = typeset(browser, f"{url}/lab/workspaces/control/tree/control.ipynb?reset&token={token}", 1)
        assert control["errors"] > 0 and control["raw"], control  # red text, and `\mat` in its MathML
        sent = requests_sent(browser)
        assert len(sent) > 20 and leaving(sent) == [], leaving(sent)
