"""launch/slurm_sweep.sh and launch/multihost.sh: dry runs, the job scripts they submit, and a real
two-process data-parallel run on this machine."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from launch import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP_CONFIG = '''
from configs import default
from launch.sweep_spec import sweep


def get_config():
  return default.get_config()


def get_sweep():
  return sweep("model.kernel_size", [3, 5, 7])
'''


def launch(script, *args, env=None, cwd=REPO):
  environment = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
  environment.update(PYTHON=sys.executable, **(env or {}))
  return subprocess.run(["bash", os.path.join(REPO, "launch", script), *args], cwd=cwd,
                        env=environment, capture_output=True, text=True, timeout=300)


def would_run(stdout: str) -> list[list[str]]:
  return [shlex.split(line[len("would run: "):]) for line in stdout.splitlines()
          if line.startswith("would run: ")]


def option(argv: list[str], name: str) -> str:
  values = [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
  assert len(values) == 1, (name, argv)
  return values[0]


def test_slurm_sweep_dry_run_submits_an_array_and_an_aggregation_job(tmp_path):
  config = tmp_path / "sweep3.py"
  config.write_text(SWEEP_CONFIG)
  workdir = tmp_path / "runs" / "s"
  result = launch("slurm_sweep.sh", "--dry_run", "--max_parallel", "2",
                  "--sbatch_args", "--partition=gpu --time=1:00:00", "--config", str(config),
                  "--workdir", str(workdir), "--config.train.steps=2", cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines()[0] == f"sweep: 3 trials in {workdir} (array 0-2%2)"
  array_job, aggregate_job = would_run(result.stdout)
  assert array_job[:2] == ["sbatch", "--parsable"]
  assert option(array_job, "--array") == "0-2%2" and "--gres=gpu:1" in array_job
  assert option(array_job, "--output") == f"{workdir}/slurm/trial_%a.out"
  assert "--partition=gpu" in array_job and "--time=1:00:00" in aggregate_job
  assert option(aggregate_job, "--dependency") == "afterany:<array job id>"
  trial_script = array_job[array_job.index("--wrap") + 1]
  aggregate_script = aggregate_job[aggregate_job.index("--wrap") + 1]
  assert trial_script.endswith("--config.train.steps=2 --only_trial $SLURM_ARRAY_TASK_ID")
  assert aggregate_script.endswith("--aggregate_only")
  assert not os.path.exists(workdir)  # nothing submitted, nothing written

  # The job scripts themselves run (as SLURM would, from another directory): task 1 with its
  # trial already finished is a no-op, and the aggregation writes the results.
  trials = sweep.plan(str(config), str(workdir), ["--config.train.steps=2"])
  os.makedirs(trials[1].workdir)
  with open(os.path.join(trials[1].workdir, "metrics.json"), "w") as f:
    json.dump({"step": 2, "model": {"psnr_masked": 20.0}}, f)
  env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1", "PYTHONPATH": ""}
  for script, expected in ((trial_script, "finished already"), (aggregate_script, "results:")):
    ran = subprocess.run(["sh", "-c", script], cwd="/", env=env, capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert expected in ran.stdout
  assert "| 1 | trial_001_kernel_size=5 | 5 | 20.0000 | done |" in (
      workdir / "results.md").read_text()


def test_multihost_dry_runs_for_slurm_ssh_and_local():
  flags = ["--", "--config", "configs/default.py", "--workdir", "runs/big run"]
  result = launch("multihost.sh", "--dry_run", "--nodes", "2", "--gpus_per_node", "4",
                  "--sbatch_args", "--time=2:00:00", *flags)
  assert result.returncode == 0, result.stderr
  (submit,) = would_run(result.stdout)
  assert submit[0] == "sbatch" and "--nodes=2" in submit and "--ntasks-per-node=4" in submit
  assert "--gpus-per-node=4" in submit and "--time=2:00:00" in submit
  srun = shlex.split(submit[submit.index("--wrap") + 1].split(" && ", 1)[1])
  assert srun[:4] == ["srun", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4"]
  assert srun[-7:] == ["-m", "maskae.main", "--multihost", "--config", "configs/default.py",
                       "--workdir", "runs/big run"]

  result = launch("multihost.sh", "--dry_run", "--nodes", "2", *flags,
                  env={"SLURM_JOB_ID": "123"})
  (srun,) = would_run(result.stdout)
  assert srun[0] == "srun" and "--multihost" in srun  # inside an allocation: srun directly

  result = launch("multihost.sh", "--dry_run", "--hosts", "h0,h1,h2", "--port", "4000", *flags)
  commands = would_run(result.stdout)
  assert [c[:2] for c in commands] == [["ssh", "h0"], ["ssh", "h1"], ["ssh", "h2"]]
  for process_id, command in enumerate(commands):
    remote = shlex.split(command[2].split(" && ", 1)[1])
    assert "--coordinator_address=h0:4000" in remote and "--num_processes=3" in remote
    assert f"--process_id={process_id}" in remote and remote[-1] == "runs/big run"

  result = launch("multihost.sh", "--dry_run", "--local", "2", *flags)
  commands = would_run(result.stdout)
  assert len(commands) == 2 and all("JAX_PLATFORMS=cpu" in c for c in commands)

  for bad in (["--nodes", "2", "--local", "2"], [], ["--bogus"]):
    result = launch("multihost.sh", "--dry_run", *bad, *flags)
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.slow
def test_multihost_local_two_processes_train_one_data_parallel_run(tmp_path):
  workdir = tmp_path / "run"
  result = launch("multihost.sh", "--local", "2", "--port", str(20000 + os.getpid() % 20000),
                  "--", "--workdir", str(workdir), "--config.data.image_size=32",
                  "--config.train.steps=2", "--config.data.num_train=16",
                  "--config.data.num_val=8", "--config.data.batch_size=8",
                  "--config.train.num_grid_examples=2")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(workdir / "run_record.json") as f:
    devices = json.load(f)["devices"]
  assert devices["process_count"] == 2 and devices["count"] == 2
  assert devices["local_count"] == 1 and devices["process_index"] == 0
  with open(workdir / "metrics.json") as f:
    assert json.load(f)["step"] == 2
