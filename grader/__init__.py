"""The course's grading side: the nbgrader course directory (this folder) and its tools.

Run `python -m grader --help` from the repository root.
"""
