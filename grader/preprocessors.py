"""nbgrader preprocessors of the course, configured in the generated nbgrader_config.py."""
import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer


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
