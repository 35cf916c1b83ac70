"""`python -m docsite [--mode student|instructor] [--out docs]`: build the documentation site."""
import argparse
import sys

from .build import OUT, DocsError, build
from .procs import MODES


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m docsite", description=__doc__)
    parser.add_argument("--mode", choices=MODES, default="student",
                        help="student (default): exercises as stubs; instructor: with solutions and reference answers")
    parser.add_argument("--out", default=str(OUT), help="output folder (default: docs/)")
    parser.add_argument("--workers", type=int, default=2, help="notebooks run at a time")
    args = parser.parse_args(argv)
    try:
        build(args.mode, args.out, workers=args.workers)
    except DocsError as e:
        sys.exit(f"docs: {e}")


if __name__ == "__main__":
    main()
