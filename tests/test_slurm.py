"""The Slurm launcher against a real single-node Slurm that this test starts on localhost (munged, slurmctld and
slurmd with their state in a scratch folder: the `slurm` fixture in conftest.py). Where it cannot start, the tests
skip and say why."""
import pytest

import dlcourse.experiments as ex
from dlcourse.datasets import ENV_VAR
from dlcourse.slurm import SlurmArray, SlurmError


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


@pytest.mark.slow
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


@pytest.mark.slow
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
