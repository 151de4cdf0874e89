"""Quick embedded default: procedural faces at 64 px, the paper's autoencoder, ~2 minutes on 2 CPU cores."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the default config; every field is overridable with --config.<path>=value."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = data = ml_collections.ConfigDict()
  data.source = "synthetic"  # synthetic | folder | tfds
  data.image_size = 64
  data.num_train = 1024
  data.num_val = 128
  data.num_test = 128
  data.batch_size = 32  # global batch, split over all devices of all hosts
  # How faces reach the devices (masks are drawn on the devices): device (the split's faces kept
  # on the devices, batches of indices), host (faces gathered on the host per batch), stream
  # (tf.data decodes each face from its file: face sets larger than host memory; needs
  # TensorFlow), auto (device when a split's faces fit in 2 GiB, else host).
  data.feed = "auto"
  data.num_parallel_calls = -1  # stream feed: tf.data.AUTOTUNE
  data.prefetch = 2  # batches put on the devices ahead of the step
  # Folder source (see README "Your own faces").
  data.folder = ""
  data.train_list = ""
  data.val_list = ""
  data.test_list = ""
  # TFDS source: a prepared dataset by name (e.g. celeb_a, lfw, or face_folder from third_party/),
  # its data_dir ("" = TFDS default), TFDS split strings per split and the image feature's key.
  data.tfds_name = ""
  data.tfds_data_dir = ""
  data.tfds_splits = ml_collections.ConfigDict(
      {"train": "train", "val": "validation", "test": "test"})
  data.tfds_image_key = "image"
  # Landmark template for aligned real crops: a name in maskae.masks (e.g. "utkface").
  data.landmark_template = "utkface"
  # Where real faces' mask landmarks come from: template (data.landmark_template for every face:
  # crops aligned like its faces) | detect (each face's own, found by maskae.landmarks once and
  # cached in data.landmark_cache; faces without one are skipped and counted).
  data.landmarks = "template"
  # With landmarks=detect: warp each photo so its eyes sit where the template's framing has them
  # (any folder of unaligned photos becomes aligned training crops).
  data.align_faces = False
  data.landmark_cache = "~/.cache/maskae/landmarks"  # "" = find them again on every load
  data.random_flip = False  # mirror each training pair left to right with probability 1/2

  config.data.mask = mask = ml_collections.ConfigDict()
  mask.styles = ("surgical", "n95", "cloth_stripes", "cloth_dots", "cloth_plaid", "cloth_print",
                 "bandana", "gaiter", "plain_dark")
  mask.style_weights = ()  # empty: uniform over styles
  mask.coverage = (0.0, 1.0)  # 0: under the nose, 1: over the nose bridge
  mask.tilt_degrees = 8.0
  mask.scale_jitter = 0.08
  mask.offset_jitter = 0.03

  config.model = model = ml_collections.ConfigDict()
  # autoencoder (the output is the decoded image) | mask_composite (it also predicts the mask and
  # replaces only that region; options in model.composite). The fields below configure both.
  model.name = "autoencoder"
  # The paper's encoder stage: Conv kxk stride s + ReLU + MaxPool 2x2.
  model.features = (32, 64)
  model.kernel_size = 3
  model.strides = 2
  model.pooling = "max"  # max | none
  model.latent_channels = 0  # 0: the last stage's features form the code
  model.latent_dense = 0  # >0: a dense bottleneck vector of this size
  model.upsampling = "repeat"  # repeat (Keras UpSampling2D) | bilinear | transpose
  model.activation = "relu"
  model.output_activation = "sigmoid"
  model.skip_connections = False
  model.bottleneck_convs = 0  # residual 3x3 Conv + activation blocks at the code's size
  model.low_res_output = False  # last decoder stage outputs at 1/factor size, resized bilinearly
  model.fourier_blocks = 0  # residual fast Fourier convolution blocks (LaMa), at 1/factor size:
  model.fourier_at = "encoder"  # after the first encoder stage | decoder (after its last conv)
  model.gated_decoder = False  # gated convolutions in the decoder (DeepFill v2)
  model.flip_average = False  # inference: average the predictions for the image and its mirror
  model.composite = composite = ml_collections.ConfigDict()  # model.name=mask_composite only
  composite.hard = False  # output = decoded where mask >= threshold, else the input (soft: blended)
  composite.threshold = 0.5  # hard: the predicted mask probability from which the decoded is taken
  composite.dilation = 0  # hard: grow the predicted region by this many pixels
  composite.detector_features = ()  # () = the mask is the decoder's 4th channel; else its own net
  composite.erase_region = False  # hard, detector: the autoencoder sees that region blanked

  config.train = train = ml_collections.ConfigDict()
  train.steps = 1500
  train.optimizer = "adam"  # adam | adamw
  train.learning_rate = 1e-3
  train.weight_decay = 0.0
  train.schedule = "constant"  # constant | cosine
  train.warmup_steps = 0
  train.grad_clip_norm = 0.0  # 0: no clipping
  train.loss = "mae"  # mae | mse | l1_ssim
  train.masked_weight = 0.0  # extra weight on masked pixels: w = 1 + masked_weight * alpha
  train.mask_loss_weight = 0.1  # mask_composite: BCE weight for the predicted mask
  train.output_loss_weight = 1.0  # weight of the pixel loss on the output (composite's: blended)
  train.raw_loss_weight = 0.0  # mask_composite: weight of the pixel loss on the decoded image too
  # Adversarial loss (off at 0): a PatchGAN discriminator on the masked region, hinge loss; the
  # model's loss gains adversarial_weight x its generator term.
  train.adversarial_weight = 0.0
  train.discriminator_features = (32, 64, 128)  # stride-2 4x4 Conv + leaky ReLU stages
  train.discriminator_learning_rate = 2e-4  # Adam (0.5, 0.999), constant
  train.log_every = 50
  train.eval_every = 500
  train.checkpoint_every = 500
  train.keep_checkpoints = 2
  train.best_metric = "psnr_masked"
  train.best_mode = "max"
  train.num_grid_examples = 8
  # jax.profiler trace (TensorBoard profile plugin / Perfetto) of steps [start, start + steps).
  train.profile_start_step = 10
  train.profile_steps = 0  # 0: no trace
  return config
