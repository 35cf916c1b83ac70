"""Sample submissions that exercise the grading pipeline.

Each sample starts from the student version. `reference` fills every exercise with the
reference solution; the others are the reference with a realistic mistake (or a correct
alternative convention) edited in. `blank` is the student version untouched.
"""
from dataclasses import dataclass, replace

import nbformat

from dlcourse.authoring import strip_markers
from grader.course import CourseError, cells_by_id
from grader.formgrader import split_rubric


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    edits: tuple = ()  # (grade_id, text in the reference cell, replacement)
    blank: bool = False


SAMPLES = {s.name: s for s in [
    Sample("reference", "the reference solutions"),
    Sample("blank", "the student version, untouched", blank=True),
    Sample("relu_uses_output", "(Leaky)ReLU backward multiplies by the activation instead of its slope", (
        ("leaky_relu", "return torch.where(x > 0, dout, self.alpha * dout)",
         "return dout * torch.where(x > 0, x, self.alpha * x)"),)),
    Sample("dw_transposed", "Linear accumulates dW transposed (X^T dZ)", (
        ("linear", "self.dw += dout.T @ x", "self.dw += x.T @ dout"),)),
    Sample("dropout_not_rescaled", "Dropout drops units but never rescales (in either mode)", (
        ("dropout", "mask = keep.to(x.dtype) / (1 - self.p)", "mask = keep.to(x.dtype)"),)),
    Sample("ce_overflow", "cross-entropy exponentiates raw scores (overflows on large scores)", (
        ("cross_entropy", "shifted = x - x.max(dim=1, keepdim=True).values.detach()", "shifted = x"),)),
    Sample("momentum_sign", "MomentumSGD moves against its velocity", (
        ("momentum_sgd", "p += v", "p -= v"),)),
    Sample("eps_outside_root", "RMSProp adds epsilon outside the square root", (
        ("rmsprop", "torch.sqrt(r + self.eps)", "(torch.sqrt(r) + self.eps)"),)),
    Sample("reg_twice", "VanillaSGD adds the L2 term to the gradient in place, then again", (
        ("vanilla_sgd", "g = torch.add(dp, p, alpha=self.reg)",
         "dp += self.reg * p\n            g = torch.add(dp, p, alpha=self.reg)"),)),
    Sample("early_stop_off_by_one", "fit stops one epoch too late", (
        ("trainer_fit", "epochs_without_improvement >= early_stopping:", "epochs_without_improvement > early_stopping:"),)),
    Sample("mlp_no_flatten", "the torch MLP feeds images to its first Linear without flattening them", (
        ("torch_mlp", "return self.seq(x.reshape(x.shape[0], -1))", "return self.seq(x)"),)),
    Sample("cnn_pool_leftover", "the CNN also pools after the convolutions left over at the end", (
        ("cnn", "if (i + 1) % self.pool_every == 0:", "if (i + 1) % self.pool_every == 0 or i == len(self.channels) - 1:"),)),
    Sample("cnn_rng_disturbed", "counting the CNN's features consumes random numbers, so the weights differ", (
        ("cnn", """        rng_state, was_training = torch.get_rng_state(), self.feature_extractor.training
        try:
            self.feature_extractor.eval()  # batch norm must not learn from the dummy
            with torch.no_grad():
                return self.feature_extractor(torch.zeros(1, *self.in_size)).numel()
        finally:
            self.feature_extractor.train(was_training)
            torch.set_rng_state(rng_state)""", """        was_training = self.feature_extractor.training
        self.feature_extractor.eval()
        with torch.no_grad():
            features = self.feature_extractor(torch.rand(1, *self.in_size)).numel()
        self.feature_extractor.train(was_training)
        return features"""),)),
    Sample("threshold_strict", "BinaryClassifier needs a probability above the threshold (> instead of >=)", (
        ("binary_classifier", "y_proba[:, self.positive_class] >= self.threshold",
         "y_proba[:, self.positive_class] > self.threshold"),)),
    Sample("roc_youden", "select_roc_thresh maximises TPR - FPR instead of taking the point closest to (0, 1)", (
        ("roc_thresh", "best = int(np.argmin(fpr ** 2 + (1 - tpr) ** 2))", "best = int(np.argmax(tpr - fpr))"),)),
    Sample("grid_threshold_unset", "mlp_experiment returns the ROC threshold but measures accuracy at 0.5", (
        ("mlp_experiment", "model.threshold = select_roc_thresh(model, *dl_valid.dataset.tensors)",
         "thresh = select_roc_thresh(model, *dl_valid.dataset.tensors)"),
        ("mlp_experiment", "return model, model.threshold, valid_acc, test_acc",
         "return model, thresh, valid_acc, test_acc"),)),
    Sample("resblock_no_padding", "the residual block's convolutions have no padding, so the maps shrink", (
        ("residual_block", "nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2)", "nn.Conv2d(c_in, c_out, kernel_size=k)"),)),
    Sample("shortcut_always_projects", "the shortcut is a 1x1 convolution even when the channels do not change", (
        ("residual_block", """        if in_channels == channels[-1]:
            self.shortcut_path = nn.Sequential(nn.Identity())
        else:
            self.shortcut_path""", "        self.shortcut_path"),)),
    Sample("alt_conventions", "correct, other conventions: test-time dropout scaling, cached outputs, "
                              "softmax-form loss gradient, a softmax that warns", (
        ("leaky_relu", 'self.grad_cache["x"] = x\n        return torch.where(x > 0, x, self.alpha * x)',
         'out = torch.where(x > 0, x, self.alpha * x)\n        self.grad_cache["out"] = out\n        return out'),
        ("leaky_relu", 'x = self.grad_cache["x"]\n        return torch.where(x > 0, dout, self.alpha * dout)',
         'slope = torch.where(self.grad_cache["out"] > 0, 1.0, self.alpha)\n        return dout * slope'),
        ("sigmoid", "return dout * (1 - out) * out", "return dout * out * (1 - out)"),
        ("cross_entropy", """dx = (dloss / sum_exp)[:, None] * exp  # log-sum-exp term: softmax * dloss
        dx[torch.arange(n), y] -= dloss  # -x_y term
        return dx""", """probs = exp / sum_exp[:, None]
        probs[torch.arange(n), y] -= 1
        return probs * dloss"""),
        ("dropout", """if not self.training_mode or self.p == 0:
            self.grad_cache["mask"] = None
            return x
        keep = torch.rand_like(x) >= self.p
        mask = keep.to(x.dtype) / (1 - self.p)""", """if not self.training_mode:
            mask = torch.full_like(x, 1 - self.p)
        else:
            mask = (torch.rand_like(x) >= self.p).to(x.dtype)"""),
        ("dropout", "return dout if mask is None else dout * mask", "return dout * mask"),
        # implicit softmax dimension: correct for 2-D scores, but torch warns (graded kernels print warnings to stdout)
        ("classifier", "return self.softmax(z)", "return nn.functional.softmax(z)"),
    )),
    Sample("classifier_import_fails", "the classifier module fails to import (the course's removed "
           "plt.cm.get_cmap as a default argument): Part 3's experiments lose (they import it), Parts 4 and 5 do not", (
        ("decision_boundary", "cmap=plt.cm.coolwarm", 'cmap=plt.cm.get_cmap("coolwarm")'),)),
    Sample("kl_interleaved", "cnn_experiment repeats the list K L times (K=[32, 64], L=2 -> 32, 64, 32, 64)", (
        ("cnn_experiment", "channels = channels_of(filters_per_layer, layers_per_block)",
         "channels = list(filters_per_layer) * layers_per_block"),)),
]}


def edited_parts(course, sample: Sample) -> list:
    "The notebooks whose cells `sample` edits."
    edited = {gid for gid, _, _ in sample.edits}
    return [part for part in course.settings.parts
            if edited & set(cells_by_id(nbformat.read(course.source / f"{part}.ipynb", as_version=4)))]


def build_submission(course, sample: Sample, parts=None):
    """Write `sample` as a submission of the course's assignment, one notebook per part (or only `parts`: a
    notebook left out is missing from the submission, and nbgrader scores it 0 without running anything)."""
    parts = course.settings.parts if parts is None else parts
    source = {part: cells_by_id(nbformat.read(course.source / f"{part}.ipynb", as_version=4))
              for part in course.settings.parts}
    unknown = [e for e in sample.edits if not any(e[0] in cells for cells in source.values())]
    unused = [e for e in sample.edits if any(e[0] in source[part] for part in parts)]  # each must apply
    out_dir = course.submitted(sample.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    for part in parts:
        nb = nbformat.read(course.release / f"{part}.ipynb", as_version=4)
        reference = source[part]
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if sample.blank or not meta.get("solution"):
                continue
            gid = meta["grade_id"]
            # a written answer is the reference answer without its rubric (graders see the rubric, students never)
            cell.source = split_rubric(reference[gid].source)[0] if cell.cell_type == "markdown" else \
                strip_markers(reference[gid].source)
            for edit in [e for e in sample.edits if e[0] == gid]:
                if edit[1] not in cell.source:
                    raise CourseError(f"sample {sample.name!r}: {edit[1]!r} is no longer in cell {gid!r}; "
                                      "update grader/samples.py to the new reference code")
                cell.source = cell.source.replace(edit[1], edit[2])
                unused.remove(edit)
        nbformat.write(nb, out_dir / f"{part}.ipynb")
    if unknown or unused:
        raise CourseError(f"sample {sample.name!r}: no exercise cell {sorted({e[0] for e in unknown + unused})}")
    return out_dir


# Hostile submissions for the course demo (tests/test_sandbox.py tries many more): (base sample, code appended to
# the first exercise of the first notebook graded). `{gradebook}` is the course gradebook's path.
HOSTILE = {
    "exits_kernel": ("reference", "import os\nos._exit(0)"),
    "reads_gradebook": ("reference", "try:\n    print('BREACH', open({gradebook!r}, 'rb').read(16))\n"
                                     "except OSError:\n    pass"),
    "patches_torch": ("dw_transposed", "import torch\ntorch.allclose = lambda *a, **k: True\n"
                                       "torch.equal = lambda *a, **k: True"),
}


def build_hostile(course, student: str, payload: str, part: str):
    "Write submission `student`: its base sample with the payload `HOSTILE[payload]` at the end of `part`'s first exercise."
    base, code = HOSTILE[payload]
    out = build_submission(course, replace(SAMPLES[base], name=student))
    path = out / f"{part}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    cell.source += "\n" + code.format(gradebook=str(course.gradebook_path)) + "\n"
    nbformat.write(nb, path)
    return out
