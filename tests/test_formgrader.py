"""Written answers graded by hand in nbgrader's formgrader, in headless Chromium, end to end.

One cheap submission (the reference's Part 1) is autograded in a temporary course; JupyterLab with the course's
formgrader (grader/formgrader.py) serves it; Chromium opens the submission, scores and comments a written answer,
gives full credit to another, and the points must reach the gradebook, the table, both CSVs and the feedback. The
grader sees each answer's reference answer and rubric; students never do. Every request the pages make goes to the
local server (MathJax included). Screenshots are kept in build/test-artifacts/formgrader/ (not committed).
"""
import csv
import glob
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import replace
from urllib.parse import urlparse

import nbformat
import pytest

from grader.batch import Batch
from grader.course import ROOT, Course, CourseError, check_no_leaks, load_settings
from grader.formgrader import is_written_answer, rubric_points, server_command, server_env, split_rubric
from grader.report import format_table, scores, write_breakdown
from grader.samples import SAMPLES, build_submission

from conftest import chromium, free_port

pytestmark = pytest.mark.slow  # grades a course; a Jupyter server and Chromium

ARTEFACTS = ROOT / "build" / "test-artifacts" / "formgrader"
PART, STUDENT = "part1_backprop", "reference"
SCORED, FULL = ("part1_q1", 3, 4), ("part1_q2", 2)  # (grade id, score entered, points), (grade id, points)
COMMENT = "Both shapes right; the weight gradient is missing its formula."


def written_sources():
    for path in sorted(glob.glob(str(ROOT / "nbs" / "part*.ipynb"))):
        for cell in filter(is_written_answer, nbformat.read(path, as_version=4).cells):
            yield cell


def test_every_written_answer_has_a_rubric_worth_its_points():
    cells = list(written_sources())
    assert len(cells) >= 10
    for cell in cells:
        reference, rubric = split_rubric(cell.source)
        gid = cell.metadata.nbgrader.grade_id
        assert reference.startswith("**Reference answer.**") and rubric, gid
        assert rubric_points(rubric) == cell.metadata.nbgrader.points, f"{gid}: rubric items do not add up"


# --- a course with one autograded submission ------------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    # graded outside the sandbox: what is tested here starts after autograding (tests/test_sandbox.py tests that)
    course = Course(replace(load_settings(), runner="parallel"), root=tmp_path_factory.mktemp("course"))
    course.student_version()
    build_submission(course, SAMPLES[STUDENT], [PART])
    assert Batch(course).grade([STUDENT], progress=False) == {STUDENT: None}
    return course


def test_rubrics_reach_neither_release_nor_solution_version(course):
    course.solution_version()
    for folder in (course.release, course.solution):
        text = "\n".join(p.read_text() for p in folder.glob("*.ipynb"))
        assert "MARK SCHEME" not in text and "Rubric (" not in text, folder.name
    assert "**Reference answer.**" in (course.solution / f"{PART}.ipynb").read_text()  # the answer stays there
    # the leak check catches a rubric put back into the solution version
    planted = course.root / "planted"
    shutil.copytree(course.solution, planted)
    nb = nbformat.read(planted / f"{PART}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == SCORED[0])
    cell.source += "\n" + split_rubric(next(c for c in written_sources()
                                            if c.metadata.nbgrader.grade_id == SCORED[0]).source)[1]
    nbformat.write(nb, planted / f"{PART}.ipynb")
    with pytest.raises(CourseError, match="leak"):
        check_no_leaks(course.source, planted, solutions_allowed=True)


# --- the formgrader in Chromium -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(course, tmp_path_factory):
    "JupyterLab with the course's formgrader in the course directory: (base URL, token)."
    port, token = free_port(), "formgrader-test"
    log = open(tmp_path_factory.mktemp("server") / "jupyter.log", "w")
    env = {**server_env(), "JUPYTER_RUNTIME_DIR": str(tmp_path_factory.mktemp("runtime"))}
    proc = subprocess.Popen([*server_command(course.root, port, token, browser=False), "--ServerApp.ip=127.0.0.1"],
                            cwd=course.root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, f"the server did not start: see {log.name}"
            time.sleep(0.5)
    yield base, token
    proc.terminate()
    proc.wait(30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    yield from chromium(window="1400,1600", log_requests=True)  # every request, for the CDN check


def wait(chrome, script, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(chrome, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(script))


def requests_made(chrome) -> dict:
    "url -> HTTP status of every request since the last call (Chromium's performance log)."
    import json
    seen = {}
    for entry in chrome.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            seen.setdefault(msg["params"]["request"]["url"], None)
        elif msg["method"] == "Network.responseReceived":
            seen[msg["params"]["response"]["url"]] = msg["params"]["response"]["status"]
    return seen


def gradebook_grade(course, grade_id):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course.gradebook_path}", course_id=course.settings.course_id) as gb:
        grade = gb.find_grade(grade_id, PART, course.settings.assignment_id, STUDENT)
        comment = gb.find_comment(grade_id, PART, course.settings.assignment_id, STUDENT)
        return grade.manual_score, comment.manual_comment


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded_by_hand(course, server, browser):
    """Chromium scores and comments one written answer and gives full credit to another; returns what the
    formgrader page showed and loaded, and the nbgrader export from before."""
    from selenium.webdriver.common.by import By
    before = {r["student_id"]: float(r["score"]) for r in csv_rows(course.export_grades())}
    base, token = server
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"{base}/login?next=/formgrader/gradebook/{course.settings.assignment_id}/{PART}")  # as a person would
    browser.find_element(By.ID, "password_input").send_keys(token)
    browser.find_element(By.ID, "login_submit").click()
    wait(browser, "return document.querySelector(\"a[href*='/formgrader/submissions/']\")")
    browser.find_element(By.CSS_SELECTOR, "a[href*='/formgrader/submissions/']").click()
    gid, score, _ = SCORED
    wait(browser, "return window.formgrader && formgrader.grades.loaded && formgrader.comments.loaded"
                  " && document.querySelectorAll('mjx-container').length > 0")
    field = browser.find_element(By.ID, gid)
    field.clear()
    field.send_keys(str(score))
    browser.find_element(By.ID, f"{gid}-comment").send_keys(COMMENT)
    browser.execute_script("document.activeElement.blur()")  # formgrader saves on change
    browser.execute_script(f"document.getElementById('{gid}').dispatchEvent(new Event('change', {{bubbles: true}}))")
    button = browser.find_element(By.XPATH, f"//input[@id='{FULL[0]}']/ancestor::div[contains(@class, 'panel-heading')]"
                                            "//button[contains(@class, 'full-credit')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    wait(browser, "return !$('html, body').is(':animated')")  # formgrader scrolls to the field it saved
    button.click()
    deadline = time.time() + 30
    while gradebook_grade(course, gid) != (score, COMMENT) or gradebook_grade(course, FULL[0])[0] != FULL[1]:
        assert time.time() < deadline, f"formgrader did not save: {gradebook_grade(course, gid)}"
        time.sleep(0.5)
    browser.execute_script(f"document.getElementById('{gid}').scrollIntoView()")
    browser.save_screenshot(str(ARTEFACTS / "formgrade_written_answer.png"))
    page = {
        "reference": browser.find_element(By.ID, f"{gid}-reference").text,
        # formulas typeset, and those MathJax could not: errors, and undefined macros (red in its MathML)
        "math": browser.execute_script("return [document.querySelectorAll('mjx-container').length, "
                                       "[...document.querySelectorAll('mjx-merror, mjx-assistive-mml [mathcolor=red]')]"
                                       ".map(e => e.textContent)]"),
        "requests": requests_made(browser),
    }
    browser.get(f"{base}/formgrader/gradebook/{course.settings.assignment_id}/{PART}")
    wait(browser, "return document.querySelector(\"a[href*='/formgrader/submissions/']\")")
    browser.save_screenshot(str(ARTEFACTS / "gradebook_notebook.png"))
    page["gradebook_page"] = browser.find_element(By.TAG_NAME, "body").text
    return page, before


def test_score_and_comment_are_saved_in_the_gradebook(course, graded_by_hand):
    assert gradebook_grade(course, SCORED[0]) == (SCORED[1], COMMENT)
    assert gradebook_grade(course, FULL[0])[0] == FULL[1]
    assert scores(course, [STUDENT])[STUDENT][PART].written == SCORED[1] + FULL[1]
    # formgrader's own table of the notebook's submissions: the written score
    assert re.search(rf"\b{SCORED[1] + FULL[1]} / {SCORED[2] + FULL[1]}\b", graded_by_hand[0]["gradebook_page"])


def test_grader_sees_reference_answer_and_rubric_beside_the_answer(graded_by_hand):
    shown = graded_by_hand[0]["reference"]
    gid, _, points = SCORED
    assert f"{points} points" in shown and "Reference answer." in shown
    reference, rubric = split_rubric(next(c for c in written_sources() if c.metadata.nbgrader.grade_id == gid).source)
    items = [line[2:].split(":")[0] for line in rubric.splitlines() if line.startswith("- ")]
    assert len(items) == 4 and all(item in shown for item in items)  # "1 point" x 4, each with what earns it
    assert "materialised" in shown  # a rubric item's text, rendered


def test_every_request_stays_on_this_machine_and_math_typesets(server, graded_by_hand):
    requests = graded_by_hand[0]["requests"]
    host = urlparse(server[0]).netloc
    remote = [u for u in requests if urlparse(u).scheme in ("http", "https") and urlparse(u).netloc != host]
    assert remote == [], f"requests off this machine: {remote[:5]}"
    mathjax = [u for u in requests if "/dlcourse/mathjax/tex-chtml.js" in u]
    assert mathjax and requests[mathjax[0]] == 200
    assert any("/dlcourse/mathjax/output/chtml/fonts/" in u for u in requests)  # its fonts, from here too
    assert graded_by_hand[0]["math"][0] > 20  # formulas typeset


def test_math_has_no_undefined_macro(graded_by_hand):
    "Every formula of the notebook renders in formgrader: none is an error (an undefined macro, say)."
    assert graded_by_hand[0]["math"][1] == [], f"formulas MathJax could not render: {graded_by_hand[0]['math'][1][:5]}"


def test_hand_grades_reach_grades_csv(course, graded_by_hand):
    before = graded_by_hand[1][STUDENT]
    after = {r["student_id"]: float(r["score"]) for r in csv_rows(course.export_grades())}
    assert after[STUDENT] - before == SCORED[1] + FULL[1]


def test_hand_grades_reach_the_table(course, graded_by_hand):
    "The table's total counts the points given by hand (nbgrader's notebook score: autograded + by hand)."
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course.gradebook_path}", course_id=course.settings.course_id) as gb:
        total = gb.find_submission_notebook(PART, course.settings.assignment_id, STUDENT).score
    row = next(line for line in format_table(scores(course, [STUDENT]), course.settings.parts).splitlines()
               if line.startswith(STUDENT))
    assert re.search(rf"\b{total:g}\b", row), f"the table's row lacks the total {total:g} with hand grades: {row}"


def test_hand_grades_reach_grades_by_part_csv(course, graded_by_hand, tmp_path):
    "grades_by_part.csv has a `<part>:<grade id>` column for each written answer, with its score."
    (breakdown,) = csv_rows(write_breakdown(course, tmp_path / "grades_by_part.csv", scores(course, [STUDENT])))
    assert breakdown.get(f"{PART}:{SCORED[0]}") == f"{SCORED[1]:g}"
    assert breakdown.get(f"{PART}:{FULL[0]}") == f"{FULL[1]:g}"


def test_feedback_shows_hand_grade_and_comment_but_no_rubric(course, graded_by_hand, browser):
    from bs4 import BeautifulSoup
    page = course.feedback() / STUDENT / course.settings.assignment_id / f"{PART}.html"
    soup = BeautifulSoup(page.read_text(), "html.parser")
    gid, score, points = SCORED
    entry = soup.find("a", href=f"#{gid}").find_parent("li").get_text(" ")
    assert re.search(rf"\b{score}(\.0+)?\s*(/|of)\s*{points}(\.0+)?\b", entry), entry
    text = soup.get_text(" ")
    assert COMMENT in text
    assert "Rubric (" not in text and "MARK SCHEME" not in page.read_text()
    browser.get(page.as_uri())
    browser.save_screenshot(str(ARTEFACTS / "feedback.png"))
