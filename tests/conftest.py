import importlib.util
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "tests" / "assets"

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

DEVICES = ["cpu", pytest.param("cuda", marks=[CUDA, pytest.mark.cuda])]


@pytest.fixture
def default_dtype(request):
    "Run a test with `torch.get_default_dtype()` set to the parametrized dtype."
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(old)


# System tools that `make sysdeps` installs (the Makefile's SYSTEM_TOOLS, command:package). A test that needs one
# calls `need(...)`: it skips where the tool is missing, but fails where DLCOURSE_SYSDEPS_REQUIRED is set (`make test`
# sets it where `make sysdeps` can install them), so that CI never skips what it could run.
MAKEFILE = ROOT.joinpath("Makefile").read_text().replace("\\\n", " ")
SYSDEPS = dict(t.split(":") for t in re.search(r"^SYSTEM_TOOLS :=(.*)", MAKEFILE, re.M).group(1).split())


def which(tool):
    "The tool's path: on PATH, or in /usr/sbin where the Slurm and munge daemons live."
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def need(*tools):
    "Skip the test unless every tool is installed; fail it instead where DLCOURSE_SYSDEPS_REQUIRED is set."
    assert SYSDEPS.keys() >= set(tools), f"not in the Makefile's SYSTEM_TOOLS: {set(tools) - SYSDEPS.keys()}"
    missing = [t for t in tools if not which(t)]
    if missing:
        packages = " ".join(sorted({SYSDEPS[t] for t in missing}))
        msg = f"{', '.join(missing)} not installed: `make sysdeps` installs {packages} (as root)"
        if os.environ.get("DLCOURSE_SYSDEPS_REQUIRED"):
            pytest.fail(f"{msg}; DLCOURSE_SYSDEPS_REQUIRED is set, so this is no skip", pytrace=False)
        pytest.skip(msg)


def chromium(*args, window="1280,1600", log_requests=False, page_load_timeout=60):
    """Headless Chromium through selenium, for a module-scoped fixture to `yield from`: skips (or fails, see `need`)
    without Debian's chromium and chromium-driver, and skips where it cannot start. `args`: more Chromium flags;
    `log_requests`: keep every network request in the performance log."""
    need("chromium", "chromedriver")
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={window}", *args):
        options.add_argument(arg)
    if log_requests:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    try:
        chrome = webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
                                  options=options)
    except WebDriverException as e:
        pytest.skip(f"headless Chromium cannot start: {e.msg}")
    chrome.set_page_load_timeout(page_load_timeout)
    yield chrome
    chrome.quit()


def load_asset_maker():
    "tests/assets/make_assets.py as a module (it is a script, not part of a package)."
    spec = importlib.util.spec_from_file_location("make_assets", ASSETS / "make_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A one-node Slurm on localhost (tests/test_slurm.py, tests/test_batch.py)
SLURM_CONF = """\
ClusterName=dlcourse-test
SlurmctldHost=localhost
SlurmUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={dir}/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SchedulerType=sched/builtin
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
NodeName=localhost CPUs={cpus} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, env):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr.strip() or res.stdout.strip()}")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    "A one-node Slurm on localhost for this module; SLURM_CONF points at it. Skips where it cannot start."
    need("munged", "slurmctld", "slurmd", "sbatch")  # squeue and sinfo come with sbatch
    if os.geteuid() != 0:
        pytest.skip("starting a test Slurm needs root (SlurmUser=root)")
    d = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (d / sub).mkdir()
    (d / "munge.key").write_bytes(os.urandom(1024))
    (d / "munge.key").chmod(0o400)
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(dir=d, ctld_port=free_port(), slurmd_port=free_port(), cpus=os.cpu_count()))
    (d / "gres.conf").write_text("Name=gpu File=/dev/null\n")  # a GPU for the scheduler to hand out, not for CUDA
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pids = []
    try:
        start([which("munged"), f"--key-file={d}/munge.key", f"--socket={d}/munge.sock", f"--pid-file={d}/munged.pid",
               f"--log-file={d}/munged.log", f"--seed-file={d}/munge.seed", "--force"], env)
        pids.append(d / "munged.pid")
        start([which("slurmctld"), "-c"], env)
        pids.append(d / "slurmctld.pid")
        start([which("slurmd"), "-N", "localhost"], env)
        pids.append(d / "slurmd.pid")
        for _ in range(60):
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env).stdout
            if state.strip() in ("idle", "mixed"):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the node did not come up (state {state.strip()!r}); see {d}/slurmctld.log")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        stop(pids)
        pytest.skip(f"cannot start a test Slurm here: {e}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    yield d
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    stop(pids)


def stop(pid_files):
    for pid_file in reversed(pid_files):
        try:
            os.kill(int(pid_file.read_text().strip()), 15)
        except (OSError, ValueError):
            pass
