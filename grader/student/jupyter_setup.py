"""Set up JupyterLab for the course, once, after `pip install -e .`: `python -m {package}.jupyter_setup`.

nbgrader comes with tools for instructors that a student does not need: the formgrader, "Create Assignment", and
the course and assignment lists of nbgrader's exchange, which warn when there is none. This turns them off in this
Python environment (the `jupyter` it runs) and keeps the Validate button of the notebooks. It writes the same
settings as `jupyter server extension disable --sys-prefix` and `jupyter labextension disable --level=sys_prefix`;
`jupyter server extension list` and `jupyter labextension list` show them.
"""
import sys
from pathlib import Path

from jupyter_server.config_manager import BaseJSONConfigManager

# nbgrader's server extensions and JupyterLab plugins for instructors ("validate_assignment" and
# "@jupyter/nbgrader:validate-assignment", the Validate button, stay on)
SERVER_EXTENSIONS = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.assignment_list",
                     "nbgrader.server_extensions.course_list"]
LAB_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list",
               "@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:menu"]


def setup(prefix=sys.prefix) -> Path:
    "Write the settings into the environment at `prefix`; return its Jupyter configuration folder."
    config = Path(prefix) / "etc" / "jupyter"
    # the folders' top-level files: they take precedence over the ones packages install (nbgrader's, which enable all)
    BaseJSONConfigManager(config_dir=str(config)).update(
        "jupyter_server_config", {"ServerApp": {"jpserver_extensions": dict.fromkeys(SERVER_EXTENSIONS, False)}})
    BaseJSONConfigManager(config_dir=str(config / "labconfig")).update(
        "page_config", {"disabledExtensions": dict.fromkeys(LAB_PLUGINS, True)})
    return config


if __name__ == "__main__":
    print(f"JupyterLab set up for the course in {setup()}: nbgrader's Validate button, not its instructor tools. "
          "Restart JupyterLab if it is running.")
