"""Old TensorFlow masks vs the JAX port, draw for draw: docs/masks_tf_vs_jax.png and a table.

  .venv/bin/python docs/make_mask_comparison.py

Loads maskae/masks.py as it was at git revision 065b144 (TensorFlow ops) under another module
name, and for each style renders one procedural 128 px face with the old `synthesize_mask` and
seed s, and with the new `maskae.masks.render` given exactly the same random numbers: the old
seed split and stateless_uniform calls are replayed in TF and wrapped in a `MaskDraws`.  Prints
the mean / max absolute difference of `masked` and `alpha` per style (and for the nine-way style
switch) and writes a grid, one row per style: clean face | old TF | new JAX | |difference| x 10.
"""

import os
import sys

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402  (after the sys.path line, like the maskae imports)

from benchmarks import report  # noqa: E402
from maskae import faces, masks  # noqa: E402

OLD_REVISION = "065b144"
SIZE = 128
OUTPUT = os.path.join(REPO, "docs", "masks_tf_vs_jax.png")
LABEL_WIDTH = 104
HEADER_HEIGHT = 18
COLUMNS = ("clean", "old TF", "new JAX", "|diff| x10")


def load_old_masks():
  """maskae/masks.py at OLD_REVISION, imported as the module `old_tf_masks`."""
  return report.module_at_revision("maskae/masks.py", OLD_REVISION, "old_tf_masks")


def tf_draws(seed) -> masks.MaskDraws:
  """The random numbers the old synthesize_mask drew from `seed`, in the order it drew them."""
  seeds = tf.random.experimental.stateless_split(tf.constant(seed, tf.int64), num=5)
  return masks.MaskDraws(
      geometry=tf.random.stateless_uniform([8], seed=seeds[0], dtype=tf.float32).numpy(),
      style=tf.random.stateless_uniform([], seed=seeds[1], dtype=tf.float32).numpy(),
      style_params=tf.random.stateless_uniform([64], seed=seeds[2], dtype=tf.float32).numpy(),
      grain=tf.random.stateless_uniform([64, 64], seed=seeds[3], minval=-1.732,
                                        maxval=1.732).numpy())


def to_uint8(image):
  return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def main():
  old = load_old_masks()
  images, landmarks = faces.generate_faces(len(masks.MASK_STYLES), SIZE, seed=0, start=1_000_000)
  images = images.astype(np.float32) / 255.0
  render = jax.jit(masks.render, static_argnums=3)

  rows = []
  print(f"{'style':14s} {'masked mean':>12s} {'masked max':>11s} {'alpha mean':>11s} "
        f"{'alpha max':>10s}")
  for k, style in enumerate(masks.MASK_STYLES):
    seed = (k, 7)
    old_masked, old_alpha = (t.numpy() for t in old.synthesize_mask(
        images[k], landmarks[k], tf.constant(seed, tf.int64), styles=(style,)))
    new_masked, new_alpha = (np.asarray(t) for t in render(
        images[k], landmarks[k], tf_draws(seed), masks.MaskSpec(styles=(style,))))
    d_masked, d_alpha = np.abs(old_masked - new_masked), np.abs(old_alpha - new_alpha)
    print(f"{style:14s} {d_masked.mean():12.2e} {d_masked.max():11.2e} {d_alpha.mean():11.2e} "
          f"{d_alpha.max():10.2e}")
    rows.append((style, [images[k], old_masked, new_masked, np.minimum(10.0 * d_masked, 1.0)]))

  # the nine-way switch (all styles, style picked from the draws) on the same faces
  worst = 0.0
  for k in range(len(masks.MASK_STYLES)):
    seed = (100 + k, 7)
    old_masked, _ = old.synthesize_mask(images[k], landmarks[k], tf.constant(seed, tf.int64))
    new_masked, _ = render(images[k], landmarks[k], tf_draws(seed), masks.MaskSpec())
    worst = max(worst, float(np.abs(old_masked.numpy() - np.asarray(new_masked)).max()))
  print(f"all styles (switch), 9 seeds: masked max |difference| {worst:.2e}")

  grid = Image.new("RGB", (LABEL_WIDTH + SIZE * len(COLUMNS), HEADER_HEIGHT + SIZE * len(rows)),
                   (255, 255, 255))
  pen = ImageDraw.Draw(grid)
  for c, title in enumerate(COLUMNS):
    pen.text((LABEL_WIDTH + c * SIZE + 4, 3), title, fill=(0, 0, 0))
  for r, (style, tiles) in enumerate(rows):
    y = HEADER_HEIGHT + r * SIZE
    pen.text((4, y + SIZE // 2 - 6), style, fill=(0, 0, 0))
    for c, tile in enumerate(tiles):
      grid.paste(Image.fromarray(to_uint8(tile)), (LABEL_WIDTH + c * SIZE, y))
  grid.save(OUTPUT)
  print(f"wrote {os.path.relpath(OUTPUT, REPO)}")


if __name__ == "__main__":
  main()
