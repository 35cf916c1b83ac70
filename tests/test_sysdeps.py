"""The system tools `make sysdeps` installs (the Makefile's SYSTEM_TOOLS): a test that needs one skips without it,
except under `make test` where `make sysdeps` can install it (root with apt-get): there it fails, so that CI never
skips the sandbox, browser or Slurm tests for want of a tool."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, SYSDEPS, need

REQUIRED = "DLCOURSE_SYSDEPS_REQUIRED"


def test_the_makefile_lists_the_sandbox_browser_and_slurm_tools():
    assert {"bwrap", "chromium", "chromedriver", "sbatch", "slurmctld", "slurmd", "munged"} <= SYSDEPS.keys()
    assert SYSDEPS["bwrap"] == "bubblewrap" and SYSDEPS["munged"] == "munge"


def test_a_missing_tool_skips_but_fails_where_it_is_required(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # hides sbatch (it is in /usr/bin, never in the sbin folders)
    monkeypatch.delenv(REQUIRED, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"sbatch not installed: `make sysdeps` installs slurm-client"):
        need("sbatch")
    monkeypatch.setenv(REQUIRED, "1")
    with pytest.raises(pytest.fail.Exception, match=r"sbatch not installed.*so this is no skip"):
        need("sbatch")
    with pytest.raises(AssertionError, match="SYSTEM_TOOLS"):
        need("a-tool-sysdeps-does-not-install")


def test_make_test_requires_the_tools_where_sysdeps_can_install_them():
    dry_run = subprocess.run(["make", "-n", "pytest", "STAMP=pyproject.toml"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    assert f"{REQUIRED}={'1' if can_install else ''} " in dry_run, dry_run
    quick = subprocess.run(["make", "-n", "test-quick", "STAMP=pyproject.toml"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert '-m pytest -m "not slow"' in quick and REQUIRED not in quick, quick


def test_every_system_tool_is_installed():
    "Under `make test` as root, one that `make sysdeps` failed to install fails here even if no test needs it."
    need(*SYSDEPS)
