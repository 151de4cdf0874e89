"""Every command of the synthetic and folder sources runs where `import tensorflow` fails (as on
GPU machines without TensorFlow): train, evaluate, unmask, reproduce and a sweep, each through its
real entry point with TensorFlow and TFDS made unimportable."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.data.image_size=32", "--config.data.num_train=16", "--config.data.num_val=8",
        "--config.data.batch_size=8", "--config.train.steps=4", "--config.train.eval_every=4",
        "--config.train.checkpoint_every=4", "--config.train.num_grid_examples=2"]
_BLOCKER = 'raise ImportError("{name} is made unimportable by tests/test_without_tensorflow.py")\n'


@pytest.fixture(scope="module")
def no_tf_env(tmp_path_factory):
  """An environment whose Python finds stub `tensorflow` and `tensorflow_datasets` packages that
  raise ImportError, ahead of the installed ones."""
  stubs = tmp_path_factory.mktemp("no_tensorflow")
  for name in ("tensorflow", "tensorflow_datasets"):
    (stubs / name).mkdir()
    (stubs / name / "__init__.py").write_text(_BLOCKER.format(name=name))
  return dict(os.environ, PYTHONPATH=os.pathsep.join([str(stubs), REPO]))


def run(env, *args):
  return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def test_the_stubs_block_tensorflow(no_tf_env):
  result = run(no_tf_env, "-c", "import tensorflow")
  assert result.returncode != 0 and "made unimportable" in result.stderr


@pytest.mark.slow
def test_train_evaluate_and_unmask_without_tensorflow(no_tf_env, tmp_path):
  faces = tmp_path / "faces"
  faces.mkdir()
  rng = np.random.default_rng(0)
  for i in range(30):
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(faces / f"{i:02d}.png")
  workdir = tmp_path / "run"
  trained = run(no_tf_env, "-m", "maskae.main", "--config", "configs/default.py", "--workdir",
                workdir, *TINY, "--config.data.source=folder", f"--config.data.folder={faces}",
                "--config.data.num_test=4")
  assert trained.returncode == 0, trained.stderr[-3000:]
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert metrics["step"] == 4 and np.isfinite(metrics["model"]["psnr_masked"])
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  assert "(4/4)" in trained.stderr  # the progress line that stands in for clu's ReportProgress

  evaluated = run(no_tf_env, "-m", "maskae.main", "--config", "configs/default.py", "--workdir",
                  workdir, *TINY, "--config.data.source=folder", f"--config.data.folder={faces}",
                  "--config.data.num_test=4", "--mode=evaluate", "--split=test")
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  summary = json.loads((workdir / "eval" / "test" / "summary.json").read_text())
  assert summary["num_examples"] == 4 and "telea" in summary["baselines"]

  unmasked = run(no_tf_env, "-m", "maskae.unmask", "--workdir", workdir, faces / "00.png",
                 "--output", tmp_path / "out")
  assert unmasked.returncode == 0, unmasked.stderr[-3000:]
  assert (tmp_path / "out" / "00_unmasked.png").is_file()


PINNED = '''
from configs import default


def get_config():
  config = default.get_config()
  config.data.image_size, config.data.num_train, config.data.num_val = 32, 16, 8
  config.data.batch_size = 8
  config.train.steps = config.train.eval_every = config.train.checkpoint_every = 2
  config.train.num_grid_examples = 2
  return config


def get_expected():
  return {"step": (2, 0)}
'''
SWEEP = '''
from configs import default


def get_config():
  return default.get_config()


def get_sweep():
  return [{"model.kernel_size": 3}, {"model.kernel_size": 5}]
'''


@pytest.mark.slow
def test_reproduce_and_sweep_without_tensorflow(no_tf_env, tmp_path):
  pinned = tmp_path / "tiny_pinned.py"
  pinned.write_text(PINNED)
  reproduced = run(no_tf_env, "-m", "maskae.reproduce", pinned, "--workdir",
                   tmp_path / "reproduced")
  assert reproduced.returncode == 0, reproduced.stdout[-2000:] + reproduced.stderr[-3000:]
  assert "PASS" in reproduced.stdout

  sweep_config = tmp_path / "tiny_sweep.py"
  sweep_config.write_text(SWEEP)
  swept = run(no_tf_env, "-m", "launch.sweep", "--config", sweep_config, "--workdir",
              tmp_path / "sweep", *[f for f in TINY if "steps" in f or "every" in f],
              "--config.data.image_size=32", "--config.data.num_train=16",
              "--config.data.num_val=8", "--config.data.batch_size=8")
  assert swept.returncode == 0, swept.stderr[-3000:]
  state = json.loads((tmp_path / "sweep" / "sweep_state.json").read_text())
  assert len(state["trials"]) == 2, state
