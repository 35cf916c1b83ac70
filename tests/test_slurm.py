"""The Slurm launcher against a real single-node Slurm that this test starts on localhost (munged, slurmctld and
slurmd with their state in a scratch folder). Where it cannot start, the tests skip and say why."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import dlcourse.experiments as ex
from dlcourse.datasets import ENV_VAR
from dlcourse.slurm import SlurmArray, SlurmError

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
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if not shutil.which(b)
               and not Path(f"/usr/sbin/{b}").exists()]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge")
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
    sbin = lambda name: shutil.which(name) or f"/usr/sbin/{name}"
    pids = []
    try:
        start([sbin("munged"), f"--key-file={d}/munge.key", f"--socket={d}/munge.sock", f"--pid-file={d}/munged.pid",
               f"--log-file={d}/munged.log", f"--seed-file={d}/munge.seed", "--force"], env)
        pids.append(d / "munged.pid")
        start([sbin("slurmctld"), "-c"], env)
        pids.append(d / "slurmctld.pid")
        start([sbin("slurmd"), "-N", "localhost"], env)
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


def test_script_asks_for_what_the_instructor_sets():
    script = SlurmArray("s", ["echo a", "echo b", "echo c"], log_dir="logs", partition="gpu", account="course",
                        gpus=1, time="00:30:00", max_parallel=2, extra=("--qos=normal",)).script()
    for line in ["#SBATCH --array=0-2%2", "#SBATCH --gres=gpu:1", "#SBATCH --partition=gpu",
                 "#SBATCH --account=course", "#SBATCH --time=00:30:00", "#SBATCH --qos=normal",
                 "#SBATCH --cpus-per-task=2", "  1) echo b ;;"]:
        assert line in script.splitlines(), line
    assert "--gres" not in SlurmArray("s", ["true"], log_dir="logs").script()
    with pytest.raises(ValueError):
        SlurmArray("s", [], log_dir="logs").script()


def test_without_slurm_the_error_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SlurmError, match="sbatch.*not on PATH"):
        SlurmArray("s", ["true"], log_dir=tmp_path).submit()


def test_a_job_array_runs_every_task_with_a_log_each(slurm, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cmds = [f"echo task {i} > {out}/{i}.txt && echo log of $SLURM_ARRAY_TASK_ID" for i in range(3)]
    cmds.append("echo failing; exit 3")
    array = SlurmArray("t", cmds, log_dir=tmp_path / "logs", workdir=tmp_path, gpus=1)
    array.run(poll=0.5, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["0.txt", "1.txt", "2.txt"]
    assert [array.log(i).read_text().strip() for i in range(3)] == [f"log of {i}" for i in range(3)]
    assert "failing" in array.log(3).read_text()
    assert (tmp_path / "logs" / "t.sbatch").read_text() == array.script()


def test_the_study_on_slurm_submits_only_the_runs_without_results(slurm, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(ENV_VAR, raising=False)
    names = ["exp1_1_L2_K32", "exp1_3_L1_K64-128-256"]
    assert ex.run_study(names, tmp_path, profile="smoke", slurm=dict(gpus=1), progress=False) == []
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f"{n}.json" for n in sorted(names)]
    logs = sorted((tmp_path / "logs").glob("study-smoke_*.log"))
    assert len(logs) == 2 and all("Output file" in log.read_text() for log in logs)
    # one result lost: rerunning submits that run alone
    (tmp_path / "exp1_1_L2_K32.json").unlink()
    capsys.readouterr()
    assert ex.run_study(names, tmp_path, profile="smoke", slurm=dict(gpus=1), progress=False) == []
    assert "1 of 2 runs have results" in capsys.readouterr().out
    script = (tmp_path / "logs" / "study-smoke.sbatch").read_text()
    assert "#SBATCH --array=0-0" in script and "exp1_1_L2_K32" in script and "exp1_3" not in script
    # everything there: nothing is submitted
    before = (tmp_path / "logs" / "study-smoke.sbatch").stat().st_mtime_ns
    assert ex.run_study(names, tmp_path, profile="smoke", slurm=dict(gpus=1), progress=False) == []
    assert (tmp_path / "logs" / "study-smoke.sbatch").stat().st_mtime_ns == before
