"""
Applies every variant of variants.py to a temporary copy of the reference
solution and reruns check_reference.py on it (at most 2 at a time).

    python tests/course_format/check_variants.py [--jobs N] [--only NAME ...] [--slow]

One line per variant; the exit status is non-zero when any variant fails.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference"
CHECK = HERE / "check_reference.py"
sys.path.insert(0, str(HERE))

from variants import VARIANTS, Variant  # noqa: E402


def validate(variants):
    "Static checks of the variant list; returns a list of problems."
    problems = []
    names = [v.name for v in variants]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"duplicate variant name {name}")
    for v in variants:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v.name):
            problems.append(f"{v.name}: not snake_case")
        path = REFERENCE / v.module
        if not path.is_file():
            problems.append(f"{v.name}: no module {v.module}")
            continue
        if not v.edits or not v.description:
            problems.append(f"{v.name}: no edits or no description")
        text = path.read_text()
        for old, new in v.edits:
            n = text.count(old)
            if n != 1:
                problems.append(f"{v.name}: old text occurs {n} times in {v.module}: {old[:60]!r}")
            if old == new:
                problems.append(f"{v.name}: an edit changes nothing")
    return problems


def apply(v: Variant, root: Path):
    path = root / v.module
    text = path.read_text()
    for old, new in v.edits:
        assert text.count(old) == 1, f"{v.name}: old text not unique in {v.module}"
        text = text.replace(old, new)
    path.write_text(text)
    compile(text, str(path), "exec")


def run_variant(v: Variant, slow=False):
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"variant_{v.name}_") as d:
        root = Path(d) / "reference"
        shutil.copytree(REFERENCE, root, ignore=shutil.ignore_patterns("__pycache__"))
        try:
            apply(v, root)
        except Exception as e:
            return v, False, f"could not apply: {type(e).__name__}: {e}", time.time() - t0
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, str(CHECK), "--ref", str(root)] + (["--slow"] if slow else [])
        p = subprocess.run(cmd, cwd=d, env=env,
                           capture_output=True, text=True, timeout=900)
    lines = p.stdout.splitlines()
    failures = [ln for ln in lines if ln.startswith("FAIL")]
    summary = next((ln for ln in reversed(lines) if "checks passed" in ln), "no summary")
    ok = p.returncode == 0 and not failures
    detail = summary if ok else "; ".join(failures) or (p.stderr.strip().splitlines() or ["?"])[-1]
    return v, ok, detail, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="parallel runs (at most 2)")
    ap.add_argument("--only", nargs="*", help="variant names to run")
    ap.add_argument("--slow", action="store_true", help="pass --slow to check_reference.py")
    args = ap.parse_args()

    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    problems = validate(VARIANTS)
    for p in problems:
        print(f"INVALID {p}")
    print(f"{len(VARIANTS)} variants over {len({v.module for v in VARIANTS})} modules; running {len(variants)}", flush=True)

    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, 2))) as pool:
        for v, ok, detail, secs in pool.map(lambda v: run_variant(v, args.slow), variants):
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} {v.name} [{v.module}] {detail} ({secs:.0f}s)", flush=True)
    print(f"{len(variants) - failed}/{len(variants)} variants pass"
          + (f", {len(problems)} invalid" if problems else ""))
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
