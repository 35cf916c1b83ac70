"""nbgrader preprocessors of the course, configured in the generated nbgrader_config.py."""
import ast
import json
import re

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute, GetGrades, NbGraderPreprocessor
from nbgrader.api import Gradebook
from traitlets import Integer, Unicode

from dlcourse.authoring import remove_hidden_tests
from grader.judging import PROBE_NAME, Verdict, fresh_seed, judge_outputs, make_inputs, probe_code, split_hidden_test
from grader.report import waiting


class LimitOutputBytes(NbGraderPreprocessor):
    "Cut each cell's text output to `max_kb` kilobytes: a submission that prints a gigabyte keeps a readable notebook."

    max_kb = Integer(1024, help="kilobytes of text kept per cell (-1: no limit)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or self.max_kb < 0:
            return cell, resources
        budget = self.max_kb * 1024
        kept = []
        for out in cell.get("outputs", []):
            size = sum(len(str(v)) for v in out.get("data", {}).values()) + len(out.get("text", ""))
            if size <= budget:
                kept.append(out)
                budget -= size
                continue
            if out.get("output_type") == "stream":
                out.text = out.text[:budget]
                kept.append(out)
            note = f"\n... output cut at {self.max_kb} KB (settings.ini: max_output_kb)\n"
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=note))
            break
        cell.outputs = kept
        return cell, resources


class ExecuteUntilKernelLost(Execute):
    """nbgrader's Execute, except that a kernel that dies or stops answering costs only the rest of its notebook.

    nbgrader gives up on the whole submission when a kernel dies (`os._exit`, a segfault, the memory or CPU limit),
    so every other notebook would score 0 as well. Here the cells after the loss are marked with an error without
    running, so their tests score 0, and the next notebook is graded in a fresh kernel as usual."""

    def preprocess(self, nb, resources=None, km=None):
        self.kernel_lost = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self.kernel_lost is not None:
            if cell.cell_type == "code":
                cell.outputs = [kernel_lost_error(f"not run: the kernel stopped in an earlier cell ({self.kernel_lost})")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except (DeadKernelError, CellTimeoutError) as e:
            self.kernel_lost = type(e).__name__
            cell.outputs.append(kernel_lost_error(f"the kernel stopped while this cell ran ({self.kernel_lost})"))
            return cell, resources


class JudgeHiddenTests(ExecuteUntilKernelLost):
    """Execute, with each hidden test judged outside the kernel (grader/judging.py).

    A test cell whose hidden region ends with `hidden_test(...)` runs in two steps: its visible part as the cell,
    then the probe, which returns observations and leaves no output, history or name behind. The grader judges the
    observations; the verdict alone decides the cell's points. A failed visible test is kept as a note (the hidden
    tests check it again, and it may come from an earlier part's bug); a failed hidden test becomes the cell's one
    error, with its message only. The verdicts, their seeds and any tampering go into the notebook's metadata
    (`dlcourse.verdicts`), for the grade table."""

    device = Unicode("cpu", help="the runner's device: a hidden test that needs CUDA runs only on 'cuda'").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self.verdicts = {}
        nb, resources = super().preprocess(nb, resources, km)
        nb.metadata["dlcourse"] = {"verdicts": self.verdicts}
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        test = None
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            test = split_hidden_test(cell.source)
        if test is not None and test.needs_cuda and self.device != "cuda":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="not run: no GPU\n")]
            self.verdicts[meta["grade_id"]] = Verdict(False, "not run: no GPU", not_run=True).as_dict()
            return cell, resources
        if test is None:
            return super().preprocess_cell(cell, resources, index)
        full, cell.source = cell.source, remove_hidden_tests(cell.source)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            verdict = self.run_hidden_test(test, index)
        finally:
            cell.source = full
            self.nb.cells[index] = cell  # nbclient stores each executed cell, the probe too, at its index
        visible = [neutral(o) for o in cell.outputs if o.output_type != "error"]
        for e in (o for o in cell.outputs if o.output_type == "error" and o.ename != "KernelLost"):
            visible.append(nbformat.v4.new_output("stream", name="stdout", text=(
                f"visible test: {e.ename}: {e.evalue}\n(the hidden tests decide this cell's points)\n")))
        if not verdict.passed:
            name = "TamperingDetected" if verdict.tampering else "HiddenTestFailed"
            visible.append(nbformat.v4.new_output("error", ename=name, evalue=verdict.message,
                                                  traceback=[f"{name}: {verdict.message}"]))
        cell.outputs = visible
        self.verdicts[meta["grade_id"]] = verdict.as_dict()
        return cell, resources

    def run_hidden_test(self, test, index) -> Verdict:
        if self.kernel_lost is not None:
            return Verdict(False, f"not run: the kernel stopped ({self.kernel_lost})")
        seed = fresh_seed()
        inputs, ns = make_inputs(test, seed)
        probe = nbformat.v4.new_code_cell(probe_code(test, inputs, seed))
        try:
            self.execute_cell(probe, index, store_history=False)
        except (DeadKernelError, CellTimeoutError) as e:
            self.kernel_lost = type(e).__name__
            return Verdict(False, f"the kernel stopped during the hidden tests ({self.kernel_lost})", seed=seed)
        return judge_outputs(test, inputs, ns, probe.outputs, seed)


class RecordNotRun(NbGraderPreprocessor):
    """After nbgrader saved the scores: a test cell that was not run (it needs a GPU, and this runner has none) has
    no automatic score and waits for a run that can judge it, in the gradebook; it is neither passed nor failed."""

    def preprocess(self, nb, resources):
        not_run = [gid for gid, v in nb.metadata.get("dlcourse", {}).get("verdicts", {}).items() if v.get("not_run")]
        if not_run:
            info = resources["nbgrader"]
            with Gradebook(info["db_url"]) as gb:
                for gid in not_run:
                    grade = gb.find_grade(gid, info["notebook"], info["assignment"], info["student"])
                    grade.auto_score, grade.needs_manual_grade = None, True
                gb.db.commit()
        return nb, resources


def neutral(output):
    """`output` as it may stay in a judged test cell: nbgrader reads points into a cell's outputs (an error or stderr
    scores 0, a number as the cell's result scores that number), and there only the verdict may decide them."""
    if output.output_type == "execute_result":
        return nbformat.v4.new_output("display_data", data=output.get("data", {}), metadata=output.get("metadata", {}))
    if output.output_type == "stream" and output.name == "stderr":
        return nbformat.v4.new_output("stream", name="stdout", text=output.text)
    return output


def kernel_lost_error(message):
    return nbformat.v4.new_output("error", ename="KernelLost", evalue=message, traceback=[f"KernelLost: {message}"])


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: test cells show their visible tests only, and a failed test shows its error message, not the
    traceback (whose frames would quote the hidden tests' lines). No output keeps a line of a hidden test or of the
    probe that ran it (a submission can capture those while it runs and print them later)."""

    def preprocess(self, nb, resources):
        self.hidden = set()
        for cell in nb.cells:
            if cell.cell_type == "code":
                visible = {line.strip() for line in remove_hidden_tests(cell.source).splitlines()}
                self.hidden |= {line.strip() for line in cell.source.splitlines()
                                if len(line.strip()) > 8 and line.strip() not in visible}
        return super().preprocess(nb, resources)

    def redact(self, text: str) -> str:
        return "\n".join("[a hidden test's line, removed]" if line.strip() in self.hidden or PROBE_NAME in line
                         else line for line in text.split("\n"))

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            return cell, resources
        if meta.get("grade") and not meta.get("solution"):
            cell.source = remove_hidden_tests(cell.source)
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {out.evalue}"]
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                out.text = self.redact(out.text)
            elif out.output_type == "error":
                out.evalue, out.traceback = self.redact(out.evalue), [self.redact(t) for t in out.traceback]
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    out.data[mime] = self.redact(value)
        return cell, resources


class GetGradesSoFar(GetGrades):
    """nbgrader's GetGrades for feedback, which also tells apart a cell with no score yet: a test not run (it needs a
    GPU, the runner has none) or a written answer still to grade by hand. Each such cell gets `status` "not run" or
    "to grade by hand" in its nbgrader metadata, and the notebook's totals count only what has been graded so far:
    `graded_score` of `graded_max`, with the waiting cells listed in `not_run` and `to_grade` (grade id, points)."""

    def preprocess(self, nb, resources):
        self.graded = [0.0, 0.0]
        self.waiting = {"not run": [], "to grade by hand": []}
        nb, resources = super().preprocess(nb, resources)
        info = resources["nbgrader"]
        info["graded_score"] = self.graded[0] - info["late_penalty"]
        info["graded_max"] = self.graded[1]
        info["not_run"], info["to_grade"] = self.waiting["not run"], self.waiting["to grade by hand"]
        return nb, resources

    def _get_score(self, cell, resources):
        super()._get_score(cell, resources)
        meta = cell.metadata.nbgrader
        grade = self.gradebook.find_grade(meta["grade_id"], self.notebook_id, self.assignment_id, self.student_id)
        if waiting(grade):
            test = cell.cell_type == "code" and not meta.get("solution")
            meta["status"] = "not run" if test else "to grade by hand"
            self.waiting[meta["status"]].append((meta["grade_id"], grade.max_score))
        else:
            self.graded[0] += grade.score
            self.graded[1] += grade.max_score


STUB = "raise NotImplementedError()"  # the stub nbgrader's ClearSolutions writes for Python


def stub_message(name: str, notebook: str, exported: bool) -> str:
    "What a stub says when it runs: the exercise, where to write it, and the export its later users need."
    return (f"`{name}` is not written yet: fill in its `# YOUR CODE HERE` in {notebook}.ipynb"
            + (", then run nbdev-export" if exported else ""))


def name_stubs(source: str, notebook: str, grade_id: str) -> str:
    """`source` with each `raise NotImplementedError()` line raising a message that names its function or class
    (`CNN._make_feature_extractor`; the grade id outside any) and the notebook."""
    lines = source.split("\n")
    parsable = "\n".join("#" if line.lstrip().startswith(("%", "!")) else line for line in lines)  # IPython magics
    names = {}  # line number -> name

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, [*scope, child.name])
            else:
                if isinstance(child, ast.Raise) and ast.unparse(child) == STUB:
                    names[child.lineno] = ".".join(scope) or grade_id
                visit(child, scope)
    try:
        visit(ast.parse(parsable), [])
    except SyntaxError:  # not Python we can read: name the exercise only
        names = {i + 1: grade_id for i, line in enumerate(lines) if line.strip() == STUB}
    exported = bool(re.search(r"^#\|\s*exports?\b", source, re.MULTILINE))
    for number, name in names.items():
        message = stub_message(name, notebook, exported)
        lines[number - 1] = lines[number - 1].replace(STUB, f"raise NotImplementedError({json.dumps(message)})")
    return "\n".join(lines)


class NameStubs(NbGraderPreprocessor):
    """After ClearSolutions: a stub names its exercise when it runs, in the notebook and in the package that
    nbdev-export writes from it, instead of a bare NotImplementedError."""

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and STUB in cell.source:
            cell.source = name_stubs(cell.source, resources["nbgrader"]["notebook"], meta["grade_id"])
        return cell, resources
