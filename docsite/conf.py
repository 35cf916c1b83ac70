# Sphinx configuration of the documentation site (used by docsite.build; the sources are generated in build/docs/src).
import os

import dlcourse

mode = os.environ.get("DLCOURSE_DOCS_MODE", "student")

project = "dlcourse"
author = "dlcourse developers"
release = version = dlcourse.__version__
html_title = f"dlcourse {version}" + (" (instructor edition: with solutions)" if mode == "instructor" else "")

extensions = [
    "myst_nb",                 # notebooks and MyST markdown
    "sphinx.ext.autodoc",      # the API reference: signatures and docstrings (no viewcode: no source pages)
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static: math renders with no network
]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The notebooks arrive executed (docsite.build runs them with their solutions, then strips what must not show).
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
# The notebooks use plain LaTeX, no macros of their own (they must render in JupyterLab and nbgrader's pages too):
# an undefined macro is an error (which the browser test finds), not red text.
mathjax3_config = {"tex": {"packages": {"[-]": ["noundefined"]}}}

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
default_role = "py:obj"  # `name` in a docstring is code, linked where it names an API entry

html_theme = "furo"
html_copy_source = False       # no _sources/: the pages are all there is
html_show_sourcelink = False
html_last_updated_fmt = None
