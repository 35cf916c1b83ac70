"""nbgrader preprocessors of the course, configured in the generated nbgrader_config.py."""
import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

from dlcourse.authoring import remove_hidden_tests


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
