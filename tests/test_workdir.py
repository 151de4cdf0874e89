"""A workdir that survives anything (maskae.workdir, config_checks, errors, checkpoint fallback),
each case through the real commands: failed starts, corrupt checkpoints, a second trainer,
impossible configs, a full disk, preemption of one of two hosts, 16-bit photos."""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest
from PIL import Image

from configs import default
from maskae import checkpointing, config_checks, errors, workdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.data.image_size=32", "--config.data.num_train=32", "--config.data.num_val=8",
        "--config.data.num_test=8", "--config.data.batch_size=8", "--config.train.log_every=1",
        "--config.train.eval_every=2", "--config.train.checkpoint_every=2",
        "--config.train.num_grid_examples=2"]


def command(module, *args):
  return [sys.executable, "-m", module, *map(str, args)]


def main_command(run, *flags, config="configs/default.py"):
  return command("maskae.main", "--config", config, "--workdir", run, *TINY, *flags)


def run(cmd, env=None, timeout=600):
  return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                        env=None if env is None else {**os.environ, **env})


def one_error(result, prog="maskae") -> str:
  """The single error line of a failed command (exit 1, no traceback)."""
  assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines() if line.startswith(f"{prog}: error:")]
  assert len(lines) == 1, result.stderr[-3000:]
  assert result.stderr.strip().splitlines()[-1] == lines[0]
  return lines[0]


def assert_ok(result):
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def checkpoint_steps(run_dir):
  return sorted(int(s) for s in os.listdir(os.path.join(run_dir, "checkpoints")) if s.isdigit())


# --- maskae.workdir ----------------------------------------------------------------------------

def test_atomic_writes_leave_nothing_behind_on_failure(tmp_path):
  path = tmp_path / "a.json"
  workdir.write_json(str(path), {"x": 1})
  (tmp_path / "dir.png").mkdir()  # os.replace onto a folder fails after the bytes are written
  with pytest.raises(OSError):
    workdir.write_png(str(tmp_path / "dir.png"), np.zeros((4, 4, 3), np.uint8))
  assert sorted(os.listdir(tmp_path)) == ["a.json", "dir.png"]
  assert json.loads(path.read_text()) == {"x": 1}
  with pytest.raises(OSError) as error:
    workdir.write_text(str(tmp_path / "dir.png"), "text")
  assert errors.one_line(error.value) == f"{tmp_path}/dir.png: Is a directory"
  assert errors.one_line(ValueError("internal")) is None
  wrapped = RuntimeError("async save failed")
  wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device", "/ckpt/4")
  assert errors.one_line(wrapped) == "/ckpt/4: No space left on device"


def test_differences_compare_values_not_spellings():
  a, b = default.get_config(), default.get_config()
  b.model.features = [32, 64]  # a list is the same value as the tuple
  a.train.learning_rate = b.train.learning_rate = float("nan")  # NaN equals NaN here
  assert workdir.differences(a, b) == []
  b.model.kernel_size, b.train.steps = 5, 7
  assert workdir.differences(a, b) == ["model.kernel_size", "train.steps"]
  assert workdir.differences(a, b, ("model.",)) == ["model.kernel_size"]
  assert workdir.differences({"x": 1}, {"x": 1, "y": {"z": 2}}) == ["y.z"]


def test_one_config_record_is_written_read_and_compared(tmp_path):
  run_dir = workdir.Workdir(str(tmp_path))
  assert run_dir.recorded_config() is None
  with pytest.raises(errors.WorkdirError, match="not a trained maskae workdir"):
    run_dir.trained_config()
  config = default.get_config()
  (tmp_path / "config.json").write_text(config.to_json_best_effort())  # an older workdir
  assert run_dir.recorded_config().model.kernel_size == 3
  config.train.steps = 9
  assert run_dir.check_config(config, allow_change=True) == ["train.steps"]
  with pytest.raises(errors.WorkdirError, match="keys that differ: train.steps"):
    run_dir.check_config(config, allow_change=False)
  run_dir.record_config(config)
  assert sorted(os.listdir(tmp_path)) == ["config.py"]  # the one record replaces config.json
  assert run_dir.recorded_config() == config and run_dir.check_config(config, False) == []
  (tmp_path / "config.py").write_text("def get_config(:\n")
  with pytest.raises(errors.WorkdirError, match="config.py: not a readable maskae config record"):
    run_dir.recorded_config()


def test_trim_metrics_log_keeps_the_checkpointed_history(tmp_path):
  run_dir = workdir.Workdir(str(tmp_path))
  for step in (1, 2, 3, 4):
    workdir.append_line(run_dir.file("metrics.jsonl"), json.dumps({"step": step}))
  with open(run_dir.file("metrics.jsonl"), "a") as f:
    f.write('{"step": 5, "trai')  # torn by a kill
  run_dir.trim_metrics_log(2)
  assert [json.loads(line)["step"] for line in open(run_dir.file("metrics.jsonl"))] == [1, 2]


def test_lock_is_exclusive_names_its_holder_and_is_released(tmp_path):
  run_dir = workdir.Workdir(str(tmp_path))
  with run_dir.lock():
    holder = (tmp_path / "train.lock").read_text()
    assert holder.startswith(f"PID {os.getpid()} on ")
    with pytest.raises(errors.WorkdirError, match=f"in use by another trainer \\(PID {os.getpid()}"):
      with run_dir.lock():
        pass
  assert (tmp_path / "train.lock").read_text() == ""  # released cleanly
  with run_dir.lock():
    pass


# --- config_checks -----------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"data.image_size": 60}, "data.image_size=60: must be a multiple of the encoder's "
                              "downsampling 16"),
    ({"model.kernel_size": 0}, "model.kernel_size=0: must be > 0"),
    ({"model.strides": 0}, "model.strides=0: must be > 0"),
    ({"model.features": ()}, "model.features=(): must be a non-empty tuple of positive ints"),
    ({"data.batch_size": 40}, "data.batch_size=40: larger than the training set"),
    ({"model.composite.hard": True}, "model.composite.hard=True: an option of "
                                     "model.name='mask_composite'"),
    ({"model.name": "mask_composite", "model.composite.dilation": 2},
     "model.composite.dilation=2: needs model.composite.hard=True"),
    ({"model.name": "mask_composite", "model.composite.erase_region": True},
     "model.composite.erase_region=True: needs model.composite.hard=True"),
    ({"model.name": "unet"}, "model.name='unet': must be one of autoencoder, mask_composite"),
    ({"train.raw_loss_weight": 1.0},
     "train.raw_loss_weight=1.0: needs model.name='mask_composite'"),
    ({"train.profile_steps": 5, "train.profile_start_step": 0, "train.steps": 4},
     "the traced steps must end by train.steps=4"),
    ({"train.output_loss_weight": 0.0}, "no pixel loss trains the decoder"),
    ({"train.steps": "10"}, "train.steps='10': must be an int"),
    ({"model.skip_connections": 1}, "model.skip_connections=1: must be a bool"),
    ({"data.feed": "disk"}, "data.feed='disk': must be one of auto, device, host, stream"),
    ({"data.source": "folder", "data.folder": "/nowhere"}, "data.folder='/nowhere': no such folder"),
    ({"data.mask.coverage": (0.8, 0.2)}, "data.mask.coverage"),
])
def test_each_impossible_value_is_named(overrides, message):
  values = default.get_config().to_dict()
  values["data"]["num_train"] = 32
  for key, value in overrides.items():  # as a config file may set them: types unchecked
    parent, name = key.rsplit(".", 1)
    target = values
    for part in parent.split("."):
      target = target[part]
    target[name] = value
  config = ml_collections.ConfigDict(values)
  assert any(message in problem for problem in config_checks.problems(config)), (
      config_checks.problems(config))


def test_every_bad_key_is_listed_at_once():
  config = default.get_config()
  config.model.kernel_size, config.model.strides, config.data.batch_size = 0, -1, 30
  with config.unlocked():
    config.train.stepz = 5
    del config.train["log_every"]
  with pytest.raises(errors.ConfigError) as error:
    config_checks.validate(config, num_devices=4)
  text = str(error.value)
  for key in ("train.stepz: unknown key", "train.log_every: missing", "model.kernel_size=0",
              "model.strides=-1"):
    assert key in text
  config = default.get_config()
  config.data.batch_size = 30
  assert config_checks.problems(config, num_devices=4) == [
      "data.batch_size=30: must be a multiple of the 4 devices it is split over"]
  for name in ("default", "paper", "utkface", "utkface_256", "utkface_unseen_masks",
               "sweep_arch"):
    module = __import__(f"configs.{name}", fromlist=["get_config"])
    assert config_checks.problems(module.get_config(), 1) == [], name


# --- the commands ------------------------------------------------------------------------------

def test_impossible_configs_fail_at_once_in_one_line_naming_the_key(tmp_path):
  """Issue case 4: each is refused before any work (its workdir is never made)."""
  cases = {
      "image_size": (["--config.data.image_size=60"], {},
                     "data.image_size=60: must be a multiple of the encoder's downsampling 16"),
      "three": (["--config.model.kernel_size=0", "--config.model.strides=0",
                 "--config.model.features=()"], {},
                "3 bad key(s): model.features=(): must be a non-empty tuple of positive ints; "
                "model.kernel_size=0: must be > 0; model.strides=0: must be > 0"),
      "devices": (["--config.data.batch_size=3"],
                  {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
                  "data.batch_size=3: must be a multiple of the 2 devices"),
      "batch": (["--config.data.batch_size=64"], {}, "data.batch_size=64: larger than the "
                                                     "training set (data.num_train=32)"),
      "unknown": (["--config.train.stepz=5"], {}, '--config.train.stepz: '),
  }
  procs = {name: subprocess.Popen(main_command(tmp_path / name, *flags), cwd=REPO,
                                  env={**os.environ, **env}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
           for name, (flags, env, _) in cases.items()}
  missing = run(command("maskae.main", "--config", tmp_path / "nope.py", "--workdir",
                        tmp_path / "missing"))
  shown = run(main_command(tmp_path / "shown", "--config.data.image_size=60"),
              env={"MASKAE_TRACEBACK": "1"})
  assert shown.returncode == 1 and "Traceback" in shown.stderr
  assert "maskae.errors.ConfigError: config has 1 bad key(s)" in shown.stderr
  lines = {}
  for name, proc in procs.items():
    out, err = proc.communicate(timeout=300)
    lines[name] = one_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert cases[name][2] in lines[name], lines[name]
    assert not (tmp_path / name).exists(), name
  assert 'Did you mean "steps"' in lines["unknown"]
  assert "nope.py: no such config file" in one_error(missing)


@pytest.mark.slow
def test_a_failed_start_leaves_the_workdir_usable(tmp_path):
  """Issue case 1: a wrong folder, unreadable files, then an incompatible model with
  --allow_config_change; afterwards the original command, evaluate and unmask still work."""
  run_dir = tmp_path / "run"
  folder = ["--config.data.source=folder", "--config.data.num_train=1",
            "--config.data.num_val=1", "--config.data.num_test=1", "--config.data.batch_size=1"]
  line = one_error(run(main_command(run_dir, *folder, f"--config.data.folder={tmp_path}/nope")))
  assert f"data.folder='{tmp_path}/nope': no such folder" in line
  bad = tmp_path / "bad"
  bad.mkdir()
  for name in ("a.jpg", "b.png", "c.jpg"):
    (bad / name).write_bytes(b"not an image")
  line = one_error(run(main_command(run_dir, *folder, f"--config.data.folder={bad}")))
  assert "no readable images among 1 file(s)" in line
  assert not (run_dir / "config.py").exists() and not (run_dir / "checkpoints" / "2").exists()

  assert_ok(run(main_command(run_dir, "--config.train.steps=4")))  # the corrected command
  record = (run_dir / "config.py").read_text()
  line = one_error(run(main_command(run_dir, "--config.train.steps=6",
                                    "--config.model.features=(8,16)", "--allow_config_change")))
  assert "restores: step 4: it does not fit the model of the config: parameter params" in line
  assert (run_dir / "config.py").read_text() == record and checkpoint_steps(run_dir) == [2, 4]

  resumed = run(main_command(run_dir, "--config.train.steps=6", "--allow_config_change"))
  assert_ok(resumed)
  assert "resumed from checkpoint at step 4" in resumed.stderr
  assert "'steps': 4" in record and "'steps': 6" in (run_dir / "config.py").read_text()
  assert_ok(run(main_command(run_dir, "--config.train.steps=6", "--mode=evaluate",
                             "--split=val")))
  photo = tmp_path / "face.png"
  Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(photo)
  assert_ok(run(command("maskae.unmask", "--workdir", run_dir, photo, "--output",
                        tmp_path / "out")))


def _corrupt(step_dir, how):
  state = os.path.join(step_dir, "state")
  if how == "truncate":
    files = [os.path.join(root, f) for root, _, names in os.walk(state) for f in names]
    largest = max(files, key=os.path.getsize)
    with open(largest, "r+b") as f:
      f.truncate(os.path.getsize(largest) // 2)
  elif os.path.exists(os.path.join(state, "_METADATA")):
    os.unlink(os.path.join(state, "_METADATA"))


@pytest.mark.slow
def test_a_corrupt_latest_checkpoint_falls_back_to_an_older_one(tmp_path):
  """Issue case 2: training resumes from the newest checkpoint that restores and sets the
  others aside; evaluation and unmask skip them without touching them."""
  run_dir = tmp_path / "run"
  assert_ok(run(main_command(run_dir, "--config.train.steps=4")))
  _corrupt(run_dir / "checkpoints" / "4", "truncate")
  resumed = run(main_command(run_dir, "--config.train.steps=6", "--allow_config_change"))
  assert_ok(resumed)
  skipped = [line for line in resumed.stderr.splitlines() if "skipped (kept on disk)" in line]
  assert len(skipped) == 1 and "checkpoints/4 skipped" in skipped[0]
  assert "resumed from checkpoint at step 2" in resumed.stderr
  assert (run_dir / "checkpoints_unrestorable" / "4" / "state").is_dir()
  assert json.loads((run_dir / "metrics.json").read_text())["step"] == 6
  steps = [json.loads(line)["step"] for line in open(run_dir / "metrics.jsonl")
           if "train/loss" in line]
  assert steps == [1, 2, 3, 4, 5, 6]  # the lost steps 3-4 logged once, by the resumed run

  config = workdir.Workdir(str(run_dir)).trained_config()
  manager = checkpointing.create_manager(str(run_dir / "checkpoints"), config.train, True)
  best = manager.best_step()  # what evaluation tries first
  manager.close()
  _corrupt(run_dir / "checkpoints" / str(best), "metadata")
  before = sorted(os.listdir(run_dir / "checkpoints"))
  evaluated = run(main_command(run_dir, "--config.train.steps=6", "--mode=evaluate",
                               "--split=val"))
  assert_ok(evaluated)
  assert f"checkpoints/{best} skipped (kept on disk)" in evaluated.stderr
  summary = json.loads((run_dir / "eval" / "val" / "summary.json").read_text())
  assert summary["checkpoint"]["step"] != best
  assert sorted(os.listdir(run_dir / "checkpoints")) == before
  for step in checkpoint_steps(run_dir):
    _corrupt(run_dir / "checkpoints" / str(step), "metadata")
  photo = tmp_path / "face.png"
  Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(photo)
  line = one_error(run(command("maskae.unmask", "--workdir", run_dir, photo, "--output",
                               tmp_path / "out")), "maskae.unmask")
  assert "restores: step" in line and not (tmp_path / "out").exists()


def _wait_for(predicate, proc, seconds=300):
  deadline = time.monotonic() + seconds
  while not predicate():
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    assert time.monotonic() < deadline, "timed out"
    time.sleep(0.2)


@pytest.mark.slow
def test_a_second_trainer_is_refused_and_a_stale_lock_taken_over(tmp_path):
  """Issue case 3."""
  run_dir = tmp_path / "run"
  first = subprocess.Popen(main_command(run_dir, "--config.train.steps=100000"), cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  try:
    _wait_for(lambda: (run_dir / "config.py").exists(), first)
    line = one_error(run(main_command(run_dir, "--config.train.steps=100000")))
    assert f"is in use by another trainer (PID {first.pid} on" in line
  finally:
    first.kill()  # SIGKILL: the lock file keeps its holder's line
    first.wait()
  assert (run_dir / "train.lock").read_text().startswith(f"PID {first.pid} ")
  again = run(main_command(run_dir, "--config.train.steps=4", "--allow_config_change"))
  assert_ok(again)
  assert f"took over the lock {run_dir}/train.lock left by PID {first.pid}" in again.stderr
  for line in open(run_dir / "metrics.jsonl"):
    json.loads(line)  # no torn or interleaved records


DISK_FULL_SCRIPT = r"""
set -u
mount -t tmpfs -o size=16m tmpfs "$MNT" || exit 77
run() { "$PY" -m maskae.main --config configs/default.py --workdir "$MNT/run" $TINY "$@"; }
run --config.train.steps=2 > "$OUT/first.out" 2> "$OUT/first.err"; echo $? > "$OUT/first.rc"
"$PY" -c "
import os, sys
stat = os.statvfs(sys.argv[1])
assert stat.f_blocks * stat.f_frsize <= 32 << 20, 'not the 16 MiB tmpfs: refusing to fill it'
open(sys.argv[1] + '/filler', 'wb').write(b'x' * max(0, stat.f_bavail * stat.f_frsize - 65536))
" "$MNT" || exit 78
run --config.train.steps=4 --allow_config_change > "$OUT/full.out" 2> "$OUT/full.err"
echo $? > "$OUT/full.rc"
find "$MNT/run" -type f -size 0 ! -name train.lock > "$OUT/empty_files"
find "$MNT/run" -name "*tmp*" > "$OUT/tmp_files"
rm "$MNT/filler"
run --config.train.steps=4 --allow_config_change > "$OUT/again.out" 2> "$OUT/again.err"
echo $? > "$OUT/again.rc"
ls "$MNT/run/checkpoints" > "$OUT/checkpoints"
mount -o remount,ro "$MNT"
run --config.train.steps=6 --allow_config_change > "$OUT/ro.out" 2> "$OUT/ro.err"
echo $? > "$OUT/ro.rc"
"""


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_partial_files(tmp_path):
  """Issue case 5, on a real 16 MiB tmpfs (private mount namespace) filled up by the test, then
  remounted read-only."""
  if shutil.which("unshare") is None or run(["unshare", "-rm", "true"]).returncode:
    pytest.skip("needs unshare -rm (user and mount namespaces) for a private tmpfs")
  mount, out = tmp_path / "mnt", tmp_path / "out"
  mount.mkdir()
  out.mkdir()
  result = run(["unshare", "-rm", "bash", "-c", DISK_FULL_SCRIPT],
               env={"MNT": str(mount), "OUT": str(out), "PY": sys.executable,
                    "TINY": " ".join(TINY)})
  if result.returncode == 77:
    pytest.skip("cannot mount a tmpfs in a private mount namespace here")
  assert result.returncode == 0, result.stderr[-3000:]
  read = lambda name: (out / name).read_text()  # pylint: disable=unnecessary-lambda-assignment
  assert read("first.rc").strip() == "0", read("first.err")[-3000:]
  full = subprocess.CompletedProcess(None, int(read("full.rc")), read("full.out"),
                                     read("full.err"))
  line = one_error(full)
  assert line.endswith(": No space left on device") and str(mount / "run") in line, line
  assert read("empty_files") == "" and read("tmp_files") == ""
  assert read("again.rc").strip() == "0", read("again.err")[-3000:]
  assert "resumed from checkpoint at step 2" in read("again.err")
  assert "4" in read("checkpoints").split()
  read_only = subprocess.CompletedProcess(None, int(read("ro.rc")), read("ro.out"), read("ro.err"))
  assert one_error(read_only).endswith(f"{mount}/run/train.lock: Read-only file system")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_preemption_of_one_host_stops_both_at_the_same_step(tmp_path):
  """Issue case 6: two processes (jax.distributed on CPU), SIGTERM to the second only."""
  run_dir, port = tmp_path / "run", _free_port()

  def start(process_id, *flags):
    return subprocess.Popen(
        main_command(run_dir, f"--coordinator_address=localhost:{port}", "--num_processes=2",
                     f"--process_id={process_id}", *flags),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"})

  procs = [start(i, "--config.train.steps=100000") for i in range(2)]
  try:
    _wait_for(lambda: (run_dir / "checkpoints" / "2").is_dir(), procs[0])
    procs[1].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=300) for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  stops = [int(out.split("maskae: stopped at step ")[1].split()[0]) for out, _ in outputs]
  assert stops[0] == stops[1] and stops[0] in checkpoint_steps(run_dir), stops
  procs = [start(i, f"--config.train.steps={stops[0] + 2}", "--allow_config_change")
           for i in range(2)]
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
  assert json.loads((run_dir / "metrics.json").read_text())["step"] == stops[0] + 2
