"""Training and evaluation pairs made on the device, inside the jitted steps.

A feed batch (maskae.input_pipeline) names its examples (`example`: uint32 [b, 2], the high and
low words of the example counter) and carries their faces (`image` uint8, `landmarks`) or, with
the faces resident on the devices, their indices (`face`). `make_pairs` turns it into the pair
the model trains on: `clean` (the face in [0, 1]), `masked` (the face with a mask drawn on it)
and `alpha` (the mask's opacity). Each mask is drawn from a key folded from (seed, split,
example) alone, so a pair does not depend on the batch, the device or the host it lands on
(big_vision's on-device mixup, per example). With `flip`, each training pair is mirrored left to
right with probability 1/2 (face, mask and alpha together), drawn from the same key.
"""

import jax
import jax.numpy as jnp
import ml_collections

from maskae import masks

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_FLIP_STREAM = 0x666C6970  # folded into an example's key for its flip draw ("flip")
Batch = dict[str, jax.Array]


def example_keys(seed: int, split: str, example: jax.Array) -> jax.Array:
  """Typed PRNG keys [b], one per example id (uint32 [b, 2])."""
  split_key = jax.random.fold_in(jax.random.key(seed), SPLIT_IDS[split])
  return jax.vmap(lambda words: jax.random.fold_in(jax.random.fold_in(split_key, words[0]),
                                                   words[1]))(example)


def faces_of(batch: Batch, resident: dict) -> tuple[jax.Array, jax.Array]:
  """(uint8 images, landmarks) of a batch: carried by it, or gathered from the resident set."""
  if "face" in batch:
    return resident["images"][batch["face"]], resident["landmarks"][batch["face"]]
  return batch["image"], batch["landmarks"]


def make_pairs(batch: Batch, resident: dict, seed: int, split: str,
               spec: masks.MaskSpec, flip: bool = False) -> Batch:
  """{"masked", "clean", "alpha"} float32 for a feed batch (see the module docstring)."""
  images, landmarks = faces_of(batch, resident)
  clean = images.astype(jnp.float32) * (1.0 / 255.0)
  keys = example_keys(seed, split, batch["example"])
  masked, alpha = masks.synthesize(clean, landmarks, keys, spec)
  pair = {"masked": masked, "clean": clean, "alpha": alpha}
  if flip:
    mirrored = jax.vmap(lambda k: jax.random.bernoulli(jax.random.fold_in(k, _FLIP_STREAM)))(keys)
    pair = {k: jnp.where(mirrored[:, None, None, None], v[:, :, ::-1], v) for k, v in pair.items()}
  return pair


def mask_spec(config: ml_collections.ConfigDict) -> masks.MaskSpec:
  """The config's data.mask block as a MaskSpec (validated)."""
  return masks.MaskSpec.from_config(config.data.mask)


_make_pairs_jit = jax.jit(make_pairs, static_argnums=(2, 3, 4))  # one trace per batch shape


def render_on_host(batch: Batch, config: ml_collections.ConfigDict, split: str) -> dict:
  """`make_pairs` of a host-feed batch on the default device, as numpy arrays (previews)."""
  return jax.device_get(_make_pairs_jit(batch, {}, config.seed, split, mask_spec(config)))
