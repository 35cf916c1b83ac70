"""nbgrader preprocessors of the course, configured in the generated nbgrader_config.py."""
import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

from dlcourse.authoring import remove_hidden_tests
from grader.judging import fresh_seed, judge_outputs, make_inputs, probe_code, split_hidden_test, Verdict


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
        if test is None:
            return super().preprocess_cell(cell, resources, index)
        full, cell.source = cell.source, remove_hidden_tests(cell.source)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            verdict = self.run_hidden_test(test, index)
        finally:
            cell.source = full
            self.nb.cells[index] = cell  # nbclient stores each executed cell, the probe too, at its index
        visible = [o for o in cell.outputs if o.output_type != "error"]
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


def kernel_lost_error(message):
    return nbformat.v4.new_output("error", ename="KernelLost", evalue=message, traceback=[f"KernelLost: {message}"])


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: test cells show their visible tests only, and a failed test shows its error message, not the
    traceback (whose frames would quote the hidden tests' lines)."""

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.source = remove_hidden_tests(cell.source)
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {out.evalue}"]
        return cell, resources
