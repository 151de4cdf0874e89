"""The paper reproduction config (configs/paper.py), pinned.

  python -m maskae.reproduce configs/pinned/paper.py

TODO: the expected metrics are not measured yet (256 px, 7,500 steps on the UTKFace folder needs
a GPU run); every value is None, so maskae.reproduce reports them as TODO (exit status 2) until
they are filled in from a real run, with the command, hardware and versions noted here.
"""

from configs import paper


def get_config():
  """configs/paper.py unchanged."""
  return paper.get_config()


def get_expected():
  """{metrics.json key: (expected value or None if not measured yet, tolerance)}."""
  return {
      "model.psnr_masked": (None, 0.3),  # TODO: measure
      "model.psnr": (None, 0.3),  # TODO: measure
      "model.ssim": (None, 0.01),  # TODO: measure
      "model.keras_accuracy": (None, 0.01),  # TODO: measure
      "masked_input.psnr_masked": (None, 0.05),  # TODO: measure
  }
