"""Validation of a whole config before any work: every key's type and range and the
combinations, reported together in one ConfigError (one line per bad key)."""

import math
import os

import ml_collections

from maskae import config_files, face_sources, input_pipeline, landmarks, masks, metrics, models
from maskae.errors import ConfigError

_MIN_IMAGE_SIZE = 16  # SSIM's 11 x 11 window (metrics.SSIM_FILTER_SIZE) must fit


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ints(v) -> bool:
  return isinstance(v, (tuple, list)) and all(_is_int(x) for x in v)


def _one_of(*values):
  return (lambda v: v in values), "one of " + ", ".join(map(str, values))


_POSITIVE = (lambda v: v > 0), "> 0"
_NON_NEGATIVE = (lambda v: v >= 0), ">= 0"
_ANY = (lambda v: True), "any"
_FINITE_NON_NEGATIVE = (lambda v: math.isfinite(v) and v >= 0), "finite and >= 0"
_POSITIVE_INTS = (lambda v: all(x > 0 for x in v)), "positive integers"
_OPEN_UNIT = (lambda v: 0 < v < 1), "in (0, 1)"

# key: (type check, type name, (range check, what is allowed)). The learning rate may be any
# number >= 0 or NaN: a NaN run is how the non-finite stop is exercised.
_FIELDS = {
    "seed": (_is_int, "an int", _ANY),
    "data.source": (lambda v: isinstance(v, str), "a string", _one_of(*face_sources.SOURCES)),
    "data.image_size": (_is_int, "an int", ((lambda v: v >= _MIN_IMAGE_SIZE),
                                            f">= {_MIN_IMAGE_SIZE}")),
    "data.num_train": (_is_int, "an int", _POSITIVE),
    "data.num_val": (_is_int, "an int", _POSITIVE),
    "data.num_test": (_is_int, "an int", _POSITIVE),
    "data.batch_size": (_is_int, "an int", _POSITIVE),
    "data.feed": (lambda v: isinstance(v, str), "a string", _one_of(*input_pipeline.FEEDS)),
    "data.num_parallel_calls": (_is_int, "an int", ((lambda v: v == -1 or v > 0),
                                                    "-1 (autotune) or > 0")),
    "data.prefetch": (_is_int, "an int", _NON_NEGATIVE),
    "data.folder": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.train_list": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.val_list": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.test_list": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.tfds_name": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.tfds_data_dir": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.tfds_splits.train": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.tfds_splits.val": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.tfds_splits.test": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.tfds_image_key": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.landmark_template": (lambda v: isinstance(v, str), "a string",
                               _one_of(*face_sources.LANDMARK_TEMPLATES)),
    "data.landmarks": (lambda v: isinstance(v, str), "a string",
                       _one_of(*face_sources.LANDMARK_MODES)),
    "data.align_faces": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "data.landmark_cache": (lambda v: isinstance(v, str), "a string", _ANY),
    "data.random_flip": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "data.mask.styles": (lambda v: isinstance(v, (tuple, list)), "a tuple", _ANY),
    "data.mask.style_weights": (lambda v: isinstance(v, (tuple, list)), "a tuple", _ANY),
    "data.mask.coverage": (lambda v: _is_number(v) or isinstance(v, (tuple, list)),
                           "a number or a (lo, hi) tuple", _ANY),
    "data.mask.tilt_degrees": (_is_number, "a number", _ANY),
    "data.mask.scale_jitter": (_is_number, "a number", _ANY),
    "data.mask.offset_jitter": (_is_number, "a number", _ANY),
    "model.features": (_ints, "a tuple of ints", ((lambda v: len(v) > 0 and
                                                   all(x > 0 for x in v)),
                                                  "a non-empty tuple of positive ints")),
    "model.kernel_size": (_is_int, "an int", _POSITIVE),
    "model.strides": (_is_int, "an int", _POSITIVE),
    "model.pooling": (lambda v: isinstance(v, str), "a string", _one_of("max", "none")),
    "model.latent_channels": (_is_int, "an int", _NON_NEGATIVE),
    "model.latent_dense": (_is_int, "an int", _NON_NEGATIVE),
    "model.upsampling": (lambda v: isinstance(v, str), "a string",
                         _one_of("repeat", "bilinear", "transpose")),
    "model.activation": (lambda v: isinstance(v, str), "a string",
                         _one_of(*sorted(models.ACTIVATIONS))),
    "model.output_activation": (lambda v: isinstance(v, str), "a string",
                                _one_of(*sorted(models.OUTPUT_ACTIVATIONS))),
    "model.skip_connections": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "model.name": (lambda v: isinstance(v, str), "a string", _one_of(*models.MODELS)),
    "model.bottleneck_convs": (_is_int, "an int", _NON_NEGATIVE),
    "model.low_res_output": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "model.fourier_blocks": (_is_int, "an int", _NON_NEGATIVE),
    "model.fourier_at": (lambda v: isinstance(v, str), "a string", _one_of("encoder", "decoder")),
    "model.gated_decoder": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "model.flip_average": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "model.composite.hard": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "model.composite.threshold": (_is_number, "a number", _OPEN_UNIT),
    "model.composite.dilation": (_is_int, "an int", _NON_NEGATIVE),
    "model.composite.detector_features": (_ints, "a tuple of ints", _POSITIVE_INTS),
    "model.composite.erase_region": (lambda v: isinstance(v, bool), "a bool", _ANY),
    "train.steps": (_is_int, "an int", _POSITIVE),
    "train.optimizer": (lambda v: isinstance(v, str), "a string", _one_of("adam", "adamw")),
    "train.learning_rate": (_is_number, "a number", ((lambda v: not v < 0),
                                                     ">= 0 (NaN allowed)")),
    "train.weight_decay": (_is_number, "a number", _FINITE_NON_NEGATIVE),
    "train.schedule": (lambda v: isinstance(v, str), "a string", _one_of("constant", "cosine")),
    "train.warmup_steps": (_is_int, "an int", _NON_NEGATIVE),
    "train.grad_clip_norm": (_is_number, "a number", _FINITE_NON_NEGATIVE),
    "train.loss": (lambda v: isinstance(v, str), "a string", _one_of("mae", "mse", "l1_ssim")),
    "train.masked_weight": (_is_number, "a number", _FINITE_NON_NEGATIVE),
    "train.mask_loss_weight": (_is_number, "a number", _FINITE_NON_NEGATIVE),
    "train.output_loss_weight": (_is_number, "a number", _FINITE_NON_NEGATIVE),
    "train.raw_loss_weight": (_is_number, "a number", _FINITE_NON_NEGATIVE),
    "train.adversarial_weight": (_is_number, "a number", _FINITE_NON_NEGATIVE),
    "train.discriminator_features": (_ints, "a tuple of ints", ((lambda v: len(v) > 0 and
                                                                 all(x > 0 for x in v)),
                                                                "a non-empty tuple of positive "
                                                                "ints")),
    "train.discriminator_learning_rate": (_is_number, "a number", _POSITIVE),
    "train.log_every": (_is_int, "an int", _POSITIVE),
    "train.eval_every": (_is_int, "an int", _POSITIVE),
    "train.checkpoint_every": (_is_int, "an int", _POSITIVE),
    "train.keep_checkpoints": (_is_int, "an int", _POSITIVE),
    "train.best_metric": (lambda v: isinstance(v, str), "a string", _one_of(*metrics.NAMES)),
    "train.best_mode": (lambda v: isinstance(v, str), "a string", _one_of("max", "min")),
    "train.num_grid_examples": (_is_int, "an int", _NON_NEGATIVE),
    "train.profile_start_step": (_is_int, "an int", _NON_NEGATIVE),
    "train.profile_steps": (_is_int, "an int", _NON_NEGATIVE),
}


def downsampling(model: ml_collections.ConfigDict) -> int:
  """The factor by which the encoder shrinks the image (strides x pool, per stage)."""
  return (model.strides * (2 if model.pooling == "max" else 1)) ** len(model.features)


def problems(config: ml_collections.ConfigDict, num_devices: int | None = None) -> list[str]:
  """Every problem of `config`, one `key=value: what is allowed` line each ([] if none).
  `num_devices`, when given, is the global device count the batch must divide over."""
  flat = config_files.flatten(config)
  found = [f"{key}: unknown key" for key in sorted(set(flat) - set(_FIELDS))]
  found += [f"{key}: missing" for key in sorted(set(_FIELDS) - set(flat))]
  bad = set()
  for key, (type_ok, type_name, (range_ok, allowed)) in _FIELDS.items():
    if key not in flat:
      continue
    value = flat[key]
    if not type_ok(value):
      found.append(f"{key}={value!r}: must be {type_name}")
      bad.add(key)
    elif not range_ok(value):
      found.append(f"{key}={value!r}: must be {allowed}")
      bad.add(key)
  if set(_FIELDS) - set(flat) or bad:
    return found  # the combinations below need every key present and valid
  return found + _combinations(config, num_devices)


def _combinations(config: ml_collections.ConfigDict, num_devices: int | None) -> list[str]:
  data, model, train = config.data, config.model, config.train
  found = []
  factor = downsampling(model)
  if data.image_size % factor:
    found.append(f"data.image_size={data.image_size}: must be a multiple of the encoder's "
                 f"downsampling {factor} (model.strides={model.strides}, model.pooling="
                 f"{model.pooling}, {len(model.features)} stages in model.features)")
  if num_devices and data.batch_size % num_devices:
    found.append(f"data.batch_size={data.batch_size}: must be a multiple of the {num_devices} "
                 "devices it is split over")
  if data.source == "synthetic" and data.batch_size > data.num_train:
    found.append(f"data.batch_size={data.batch_size}: larger than the training set "
                 f"(data.num_train={data.num_train})")
  if data.source == "folder":
    if not data.folder:
      found.append("data.folder='': must name a folder of face images (data.source=folder)")
    elif not os.path.isdir(data.folder):
      found.append(f"data.folder={data.folder!r}: no such folder")
    for split in ("train", "val", "test"):
      path = data[f"{split}_list"]
      if path and not os.path.isfile(path):
        found.append(f"data.{split}_list={path!r}: no such file")
  if data.source == "tfds" and not data.tfds_name:
    found.append("data.tfds_name='': must name a TFDS dataset (data.source=tfds)")
  if data.feed == "stream" and data.source == "synthetic":
    found.append("data.feed='stream': streams files (data.source folder or tfds), not "
                 "procedural faces")
  if data.landmarks == "detect" and data.source == "synthetic":
    found.append("data.landmarks='detect': finds real photos' landmarks (data.source folder or "
                 "tfds); procedural faces carry exact ones")
  if data.landmarks == "detect" and data.feed == "stream":
    found.append("data.landmarks='detect': needs the device or host feed (data.feed='stream' "
                 "decodes each face as it trains, with the template)")
  if data.align_faces and data.landmarks != "detect":
    found.append("data.align_faces=True: needs data.landmarks='detect' (it aligns by the "
                 "landmarks found)")
  if data.align_faces and data.landmark_template not in landmarks.FRAMING_EYES:
    found.append(f"data.align_faces=True: data.landmark_template={data.landmark_template!r} has "
                 f"no measured framing (landmarks.FRAMING_EYES: "
                 f"{', '.join(landmarks.FRAMING_EYES)})")
  try:
    masks.MaskSpec.from_config(data.mask)
  except ValueError as e:
    found.append(str(e))
  if model.fourier_blocks and model.features[0] < 2:
    found.append(f"model.fourier_blocks={model.fourier_blocks}: needs model.features[0] >= 2 "
                 "(its channels split into a local and a global half)")
  disc_factor = 2 ** len(train.discriminator_features)
  if train.adversarial_weight and data.image_size < 4 * disc_factor:
    found.append(f"train.discriminator_features={tuple(train.discriminator_features)}: "
                 f"{len(train.discriminator_features)} stride-2 stages leave under 4 x 4 "
                 f"patches of data.image_size={data.image_size}")
  composite = model.composite
  if model.name != "mask_composite":
    for field in ("hard", "dilation", "detector_features", "erase_region"):
      if composite[field]:
        found.append(f"model.composite.{field}={composite[field]!r}: an option of "
                     f"model.name='mask_composite' (model.name={model.name!r})")
  if composite.dilation and not composite.hard:
    found.append(f"model.composite.dilation={composite.dilation}: needs "
                 "model.composite.hard=True")
  if composite.erase_region and not (composite.hard and composite.detector_features):
    found.append("model.composite.erase_region=True: needs model.composite.hard=True and "
                 "model.composite.detector_features (the region comes from the detector)")
  if train.raw_loss_weight and model.name != "mask_composite":
    found.append(f"train.raw_loss_weight={train.raw_loss_weight}: needs "
                 "model.name='mask_composite' (the autoencoder's decoded image is its output)")
  if not train.output_loss_weight and not train.raw_loss_weight:
    found.append("train.output_loss_weight=0 and train.raw_loss_weight=0: no pixel loss "
                 "trains the decoder")
  if train.profile_steps and train.profile_start_step + train.profile_steps > train.steps:
    found.append(f"train.profile_start_step={train.profile_start_step} + train.profile_steps="
                 f"{train.profile_steps}: the traced steps must end by train.steps={train.steps}")
  if train.warmup_steps > train.steps:
    found.append(f"train.warmup_steps={train.warmup_steps}: must be <= train.steps="
                 f"{train.steps}")
  return found


def validate(config: ml_collections.ConfigDict, num_devices: int | None = None,
             where: str = "config") -> None:
  """Raises one ConfigError listing every problem of `config` (see `problems`)."""
  found = problems(config, num_devices)
  if found:
    raise ConfigError(f"{where} has {len(found)} bad key(s): " + "; ".join(found))
