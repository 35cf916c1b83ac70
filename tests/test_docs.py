"""The documentation site: built from nbs/, checked for leaks in every file, and loaded page by page in Chromium.

The student site (the default) must show no solution line, no reference answer and no hidden test; the instructor
site shows solutions but no hidden test. The browser part loads every page in headless Chromium (Debian's
`chromium` and `chromium-driver`, installed by `make sysdeps`); where it cannot start it skips and says why (without
them it fails under `make test` as root: tests/test_sysdeps.py).
Screenshots of the home page and of a chapter are kept in build/test-artifacts/docs/ (not committed).
"""
import base64
import hashlib
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
from PIL import Image

from docsite.build import NBS, ROOT, build, notebooks
from docsite.leaks import check_site, forbidden_lines, page_text

from conftest import chromium

pytestmark = pytest.mark.slow  # builds the site; Chromium

ARTEFACTS = ROOT / "build" / "test-artifacts" / "docs"


@pytest.fixture(scope="session")
def student_site(tmp_path_factory):
    return build("student", tmp_path_factory.mktemp("site") / "student", log=lambda *a: None)


@pytest.fixture(scope="session")
def instructor_site(tmp_path_factory, student_site):  # after the student build: the executed notebooks are reused
    return build("instructor", tmp_path_factory.mktemp("site") / "instructor", log=lambda *a: None)


def pages(site):
    return sorted(site.rglob("*.html"))


def test_every_notebook_is_a_page_and_every_module_has_a_reference(student_site):
    for nb in notebooks():
        assert (student_site / f"{nb.stem}.html").exists(), nb.name
    modules = {p.stem for p in (ROOT / "dlcourse").glob("*.py") if not p.stem.startswith("_")}
    assert {p.stem for p in (student_site / "api").glob("*.html")} == {f"dlcourse.{m}" for m in modules}


def test_api_reference_has_every_public_name_with_signature_docstring_and_chapter(student_site):
    import importlib
    for page in (student_site / "api").glob("*.html"):
        module = importlib.import_module(page.stem)
        markup = page.read_text()
        for name in module.__all__:
            entry = re.search(rf'<dt class="sig[^"]*" id="{re.escape(page.stem)}\.{name}">(.*?)</dd>', markup, re.S)
            assert entry, f"{page.stem}.{name} has no entry"
            assert re.search(r'href="\.\./(part|0)\w+\.html#defined-', entry.group(1)), f"{name}: no link to its chapter"
            if callable(getattr(module, name)) and (getattr(module, name).__doc__ or "").strip():
                words = re.findall(r"[A-Za-z]{4,}", getattr(module, name).__doc__)[:3]
                assert " ".join(words) in " ".join(re.findall(r"[A-Za-z]{4,}", page_text(entry.group(1)))), \
                    f"{name}: docstring missing"
    assert "viewcode" not in " ".join(p.name for p in student_site.rglob("*")), "source pages would show solutions"
    assert not (student_site / "_modules").exists()


def test_student_site_shows_stubs_and_no_solution_answer_or_hidden_test(student_site):
    assert check_site(student_site, NBS, "student") == []
    part1 = (student_site / "part1_backprop.html").read_text()
    assert part1.count("NotImplementedError") >= 8  # one stub per exercise method at least
    assert "YOUR ANSWER HERE" in part1 and "Reference answer" not in part1


def test_instructor_site_shows_solutions_but_no_hidden_test(instructor_site):
    assert check_site(instructor_site, NBS, "instructor") == []
    # the scan finds real solution lines in real pages: the same site fails the student check
    leaks = check_site(instructor_site, NBS, "student")
    assert len(leaks) > 50 and any("part1_backprop.html" in p for p in leaks)
    assert "Reference answer" in (instructor_site / "part1_backprop.html").read_text()


def test_scan_finds_a_hidden_test_in_any_asset(student_site, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(student_site, site)
    forbidden = forbidden_lines(NBS, "student")
    hidden = [line for line, where in forbidden.items() if "hidden test" in where]
    plain = [h for h in hidden if not set(h) & set("'\"\\")]  # no quote or backslash for repr() to escape
    short, long = next(h for h in plain if len(h) < 24), next(h for h in plain if len(h) >= 40)
    (site / "_static" / "extra.js").write_text(f"{short}\nvar s = {long!r};\n")  # a whole line, and inside one
    with open(site / "_static" / "mathjax" / "tex-chtml.js", "a") as f:  # MathJax is skipped only while as shipped
        f.write(f"/* {long} */")
    assert sorted(check_site(site, NBS, "student")) == sorted(
        [f"_static/extra.js shows {line!r} ({forbidden[line]})" for line in (short, long)]
        + [f"_static/mathjax/tex-chtml.js shows {long!r} ({forbidden[long]})"])


def test_figures_are_real_images(student_site):
    figures = sorted((student_site / "_images").glob("*.png"))
    drawn = {hashlib.sha256(base64.b64decode(o["data"]["image/png"])).hexdigest()
             for nb in (ROOT / "build" / "docs" / "executed").glob("*.ipynb")
             for c in nbformat.read(nb, as_version=4).cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})}
    assert len(drawn) >= 10 and len(figures) >= len(drawn)  # every distinct plot the notebooks draw is on the site
    for png in figures:
        with Image.open(png) as im:
            lo, hi = im.convert("L").getextrema()
            assert im.width > 50 and im.height > 50 and hi - lo > 50, f"{png.name} is blank"


# --- in the browser -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def _wait(chrome, script, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(chrome, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(script))


def _ids(path, cache={}):
    if path not in cache:
        cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text()))
    return cache[path]


def test_every_page_loads_links_resolve_math_renders_images_show(student_site, browser, capsys):
    site = student_site.resolve()
    checked_links, math_pages, images = 0, 0, 0
    for page in pages(site):
        browser.get(page.as_uri())
        _wait(browser, "return document.readyState === 'complete'")
        assert browser.execute_script("return document.title"), page.name
        # math: every formula typeset by MathJax, none with a TeX error
        n_math = browser.execute_script("return document.querySelectorAll('.math').length")
        if n_math:
            _wait(browser, f"return document.querySelectorAll('mjx-container').length >= {n_math}")
            assert browser.execute_script("return document.querySelectorAll('mjx-merror, [data-mjx-error]').length") == 0, \
                f"{page.name}: a formula does not render"
            math_pages += 1
        # images: loaded and not empty
        broken = browser.execute_script(
            "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert broken == [], f"{page.name}: images that do not load: {broken}"
        images += browser.execute_script("return document.querySelectorAll('.cell_output img').length")
        # links: every link into the site reaches a file, and its #fragment an element of that page
        for href in browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)"):
            url = urlparse(href)
            if url.scheme != "file":
                continue
            target = Path(unquote(url.path))
            assert target.is_relative_to(site) and target.is_file(), f"{page.name}: broken link {href}"
            if url.fragment and target.suffix == ".html":
                assert unquote(url.fragment) in _ids(target), f"{page.name}: no #{url.fragment} in {target.name}"
            checked_links += 1
    assert math_pages >= 3 and images >= 10
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for name in ("index", "part1_backprop"):
        browser.get((site / f"{name}.html").as_uri())
        _wait(browser, "return document.readyState === 'complete' && "
                       "document.querySelectorAll('mjx-container').length >= document.querySelectorAll('.math').length")
        assert browser.save_screenshot(str(ARTEFACTS / f"{name}.png"))
    with capsys.disabled():
        print(f"\n[docs] Chromium loaded {len(pages(site))} pages, followed {checked_links} internal links, "
              f"math on {math_pages} pages, {images} figures; screenshots in {ARTEFACTS}/")


def test_search_finds_a_known_name(student_site, browser):
    browser.get((student_site.resolve() / "search.html").as_uri() + "?q=LeakyReLU")
    _wait(browser, "return (document.querySelector('#search-results .search-summary') || {}).textContent"
                   "?.startsWith('Search finished')")
    hits = browser.execute_script("return [...document.querySelectorAll('#search-results li a')].map(a => a.href)")
    assert any("dlcourse.layers.html" in h for h in hits), hits
    assert any("part1_backprop.html" in h for h in hits), hits
