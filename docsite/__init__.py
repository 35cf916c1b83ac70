"""The documentation site: `python -m docsite` (or `make docs`) builds `docs/` from the notebooks in `nbs/`.

Steps: run each notebook with its reference solutions and without its hidden tests (so the pages have their
figures), let nbdev process them for the docs (`nbdev-proc-nbs`, with the processors of `docsite.procs`, which
turn exercises into stubs on the student site), write the API reference, and render everything with Sphinx and
myst-nb. The finished site is scanned for solution lines and hidden tests before the build reports success.
"""
