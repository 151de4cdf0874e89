"""configs/utkface.py, utkface_256.py and utkface_unseen_masks.py: their fields, and a tiny
real-face run."""

import json
import os
import subprocess
import sys

import pytest

from configs import paper, utkface, utkface_256, utkface_unseen_masks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTKFACE = os.path.join(REPO, utkface.UTKFACE)


def test_utkface_configs_fields():
  best, reference, big = utkface.get_config(), utkface.get_config("paper"), utkface_256.get_config()
  assert (best.data.image_size, big.data.image_size) == (128, 256)
  for config in (best, reference, big):
    assert config.data.source == "folder"
    assert config.data.train_list.endswith("utkface/train.txt")
    assert config.data.val_list.endswith("utkface/val.txt")
    assert config.data.mask.styles == paper.get_config().data.mask.styles  # the full mix
  big_model = big.model.to_dict()  # the 256 px run's autoencoder saw the whole photo
  big_model["composite"]["erase_region"] = True
  assert best.model.to_dict() == big_model and best.model.bottleneck_convs == 4
  # The reference row is the paper's model, loss and optimizer on the same data.
  assert reference.model.to_dict() == paper.get_config().model.to_dict()
  assert (reference.train.loss, reference.train.schedule, reference.train.learning_rate) == (
      "mae", "constant", 1e-3)
  assert best.model.name == "mask_composite" and best.model.low_res_output
  assert reference.model.name == "autoencoder"
  assert (best.train.output_loss_weight, best.train.raw_loss_weight) == (0.0, 1.0)
  # round1 is the first round's run: the same parameters, without flips, for fewer steps; best
  # also averages the mirror's prediction in, takes the decoded image from a lower threshold and
  # keeps the autoencoder from that region.
  round1 = utkface.get_config("round1")
  for config in (round1, best):
    config.model.flip_average = False
    config.model.composite.threshold, config.model.composite.dilation = 0.5, 3
    config.model.composite.erase_region = False
  assert round1.model.to_dict() == best.model.to_dict()
  best = utkface.get_config()
  assert best.model.flip_average and (best.model.composite.threshold,
                                      best.model.composite.dilation) == (0.2, 1)
  assert best.model.composite.erase_region and not big.model.composite.erase_region
  assert best.data.random_flip and not round1.data.random_flip
  assert (round1.train.steps, best.train.steps) == (9000, 36000)
  assert (round1.data.batch_size, best.data.batch_size) == (32, 8)
  # The 256 px and held-out configs keep the schedules their documented runs took.
  assert (big.data.batch_size, big.train.steps, big.train.eval_every) == (32, 13000, 500)
  held = utkface_unseen_masks.get_config("n95")
  assert (held.data.batch_size, held.train.steps, held.train.eval_every) == (32, 4000, 1000)
  with pytest.raises(ValueError, match='configs/utkface.py: unknown arch "unet"'):
    utkface.get_config("unet")


def test_unseen_masks_config_holds_out_the_named_styles_only():
  full = utkface.get_config()
  held = utkface_unseen_masks.get_config("gaiter,bandana")
  assert set(held.data.mask.styles) == set(full.data.mask.styles) - {"gaiter", "bandana"}
  assert held.model.composite.erase_region and full.model.composite.erase_region
  assert (held.model.composite.threshold, held.model.composite.dilation) == (0.25, 2)
  held.model.composite.threshold, held.model.composite.dilation = 0.2, 1
  assert held.model.to_dict() == full.model.to_dict()
  assert utkface_unseen_masks.get_config("n95").data.mask.styles == tuple(
      s for s in full.data.mask.styles if s != "n95")
  for bad in ("n96", "", ",".join(full.data.mask.styles)):
    with pytest.raises(ValueError, match="must be some, not all, of: surgical, n95"):
      utkface_unseen_masks.get_config(bad)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(UTKFACE), reason=f"real face set absent: {UTKFACE}")
def test_utkface_config_trains_on_real_faces(tmp_path):
  """configs/utkface.py through `python -m maskae.main`, on 16 listed training faces."""
  with open(os.path.join(UTKFACE, "train.txt")) as f:
    names = f.read().split()[:16]
  with open(os.path.join(UTKFACE, "val.txt")) as f:
    val_names = f.read().split()[:8]
  (tmp_path / "train.txt").write_text("\n".join(names) + "\n")
  (tmp_path / "val.txt").write_text("\n".join(val_names) + "\n")
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "maskae.main", "--config", "configs/utkface.py", "--workdir",
       str(workdir), f"--config.data.train_list={tmp_path / 'train.txt'}",
       f"--config.data.val_list={tmp_path / 'val.txt'}", "--config.data.image_size=32",
       "--config.data.batch_size=8", "--config.train.steps=2", "--config.train.warmup_steps=1",
       "--config.train.eval_every=2", "--config.train.checkpoint_every=2"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert metrics["step"] == 2 and metrics["num_examples"] == 8
  assert metrics["train_seconds"] > 0 and "mask_bce" not in metrics["model"]
  record = json.loads((workdir / "run_record.json").read_text())
  assert "n=16" in json.dumps(record)
