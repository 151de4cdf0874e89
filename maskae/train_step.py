"""Train state, losses and the data-parallel train / eval steps, masks drawn inside them (no
TensorFlow here).

The train step is written per replica in pmap style (local batch in, `lax.pmean` of gradients and
metrics) and run with `jax.shard_map` under `jax.jit` over a 1-D `data` mesh, with the state
donated. The same code spans hosts once `jax.distributed.initialize` has run.
"""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct
from flax.training import train_state
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from maskae import metrics as metrics_lib
from maskae import models, pairs

DATA_AXIS = "data"
Batch = dict[str, jax.Array]


class TrainState(train_state.TrainState):
  """Flax TrainState (step, params, optimizer state); the model is pure `init` / `apply`."""


class AdversarialTrainState(TrainState):
  """A TrainState that also holds the PatchGAN discriminator's parameters and Adam state
  (train.adversarial_weight > 0; checkpointed with the model)."""
  discriminator_params: Any = None
  discriminator_opt_state: Any = None
  discriminator_apply_fn: Callable = struct.field(pytree_node=False, default=None)
  discriminator_tx: optax.GradientTransformation = struct.field(pytree_node=False, default=None)


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh named `data` over all devices (of all hosts) or the given ones."""
  devices = jax.devices() if devices is None else devices
  return Mesh(devices, (DATA_AXIS,))


def make_optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam (the paper) or AdamW, a constant or warmup + cosine schedule, optional clipping."""
  if train.schedule == "constant":
    lr = (optax.warmup_constant_schedule(0.0, train.learning_rate, train.warmup_steps)
          if train.warmup_steps else train.learning_rate)
  elif train.schedule == "cosine":
    lr = optax.warmup_cosine_decay_schedule(0.0, train.learning_rate, train.warmup_steps,
                                            max(train.steps, train.warmup_steps + 1))
  else:
    raise ValueError(f'unknown train.schedule "{train.schedule}"; valid: constant, cosine')
  if train.optimizer == "adam":
    opt = optax.adam(lr)
  elif train.optimizer == "adamw":
    opt = optax.adamw(lr, weight_decay=train.weight_decay)
  else:
    raise ValueError(f'unknown train.optimizer "{train.optimizer}"; valid: adam, adamw')
  if train.grad_clip_norm:
    opt = optax.chain(optax.clip_by_global_norm(train.grad_clip_norm), opt)
  return opt


def create_train_state(model, config: ml_collections.ConfigDict, rng: jax.Array) -> TrainState:
  """Initial parameters (from `rng`) and optimizer state."""
  size = config.data.image_size
  images = jnp.zeros((1, size, size, 3), jnp.float32)
  params = model.init(rng, images)["params"]
  tx = make_optimizer(config.train)
  if not config.train.adversarial_weight:
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx)
  discriminator = models.PatchDiscriminator(tuple(config.train.discriminator_features))
  d_params = discriminator.init(jax.random.fold_in(rng, 1), images)["params"]
  d_tx = optax.adam(config.train.discriminator_learning_rate, b1=0.5, b2=0.999)
  return AdversarialTrainState.create(
      apply_fn=model.apply, params=params, tx=tx, discriminator_params=d_params,
      discriminator_opt_state=d_tx.init(d_params), discriminator_apply_fn=discriminator.apply,
      discriminator_tx=d_tx)


def reconstruction_loss(outputs: dict, batch: Batch, train: ml_collections.ConfigDict):
  """The configured loss and its parts. Pixel weights 1 + masked_weight * alpha.

  For the mask_composite model: `output_loss_weight` times the loss of the composite output, plus
  `mask_loss_weight` times the mask's binary cross-entropy, plus `raw_loss_weight` times the same
  pixel loss on the decoded image before compositing (which alone gives the decoder a gradient at
  every pixel). `output_loss_weight=0` with `raw_loss_weight > 0` trains the decoded image as a
  plain autoencoder and the mask by its cross-entropy alone. (`maskae.config_checks` refuses
  the combinations that train nothing or weigh an output the model lacks.)
  """
  clean, alpha = batch["clean"], batch["alpha"]
  weights = 1.0 + train.masked_weight * alpha

  def weighted_mean(x):
    if not train.masked_weight:  # all weights 1: the plain mean, without the weight map's passes
      return jnp.mean(x)
    return jnp.mean(weights * x) / jnp.mean(weights)

  def pixel_loss(pred, prefix):
    if train.loss == "mae":
      return weighted_mean(jnp.abs(pred - clean)), {}
    if train.loss == "mse":
      return weighted_mean(jnp.square(pred - clean)), {}
    if train.loss == "l1_ssim":
      l1, ssim = weighted_mean(jnp.abs(pred - clean)), jnp.mean(metrics_lib.ssim_map(pred, clean))
      return 0.16 * l1 + 0.84 * (1.0 - ssim), {f"{prefix}l1": l1, f"{prefix}ssim": ssim}
    raise ValueError(f'unknown train.loss "{train.loss}"; valid: l1_ssim, mae, mse')

  output_weight, raw_weight = train.output_loss_weight, train.raw_loss_weight
  loss, parts = 0.0, {}
  if output_weight:
    loss, parts = pixel_loss(outputs["output"], "")
    loss = output_weight * loss
  if raw_weight:
    parts["raw"], raw_parts = pixel_loss(outputs["raw"], "raw_")
    parts.update(raw_parts)
    loss = loss + raw_weight * parts["raw"]
  if "mask" in outputs:
    parts["mask_bce"] = jnp.mean(optax.sigmoid_binary_cross_entropy(
        _logit(outputs["mask"]), alpha))
    loss = loss + train.mask_loss_weight * parts["mask_bce"]
  return loss, parts


def patch_weights(alpha: jax.Array, logits_shape: tuple) -> jax.Array:
  """The mask's mean opacity over each discriminator patch's cell, [N, h, w, 1]: the hinge terms
  are averaged with these weights, so the discriminator judges the masked region."""
  n, h, w, _ = logits_shape
  cell = alpha.shape[1] // h
  return alpha[:, :h * cell, :w * cell].reshape(n, h, cell, w, cell, 1).mean(axis=(2, 4))


def _weighted_mean(x: jax.Array, weights: jax.Array) -> jax.Array:
  return jnp.sum(weights * x) / jnp.maximum(jnp.sum(weights), 1e-6)


def discriminator_hinge_loss(real_logits, fake_logits, weights) -> jax.Array:
  """Hinge loss of the discriminator: relu(1 - D(clean)) + relu(1 + D(output)), masked patches."""
  return (_weighted_mean(jax.nn.relu(1.0 - real_logits), weights)
          + _weighted_mean(jax.nn.relu(1.0 + fake_logits), weights))


def _logit(p: jax.Array) -> jax.Array:
  p = jnp.clip(p, 1e-6, 1 - 1e-6)
  return jnp.log(p) - jnp.log1p(-p)


def _update(config: ml_collections.ConfigDict, state: TrainState, batch: Batch):
  """One replica's share of a step on pairs: gradients and metrics averaged over the replicas.
  With train.adversarial_weight, the model's loss gains the generator's hinge term -D(output)
  on the masked patches, and the discriminator then takes one step of its own on (clean, the
  model's output before this update)."""
  adversarial_weight = config.train.adversarial_weight

  def loss_fn(params):
    outputs = state.apply_fn({"params": params}, batch["masked"], train=True)
    loss, parts = reconstruction_loss(outputs, batch, config.train)
    if adversarial_weight:
      logits = state.discriminator_apply_fn({"params": state.discriminator_params},
                                            outputs["output"])
      parts["adversarial"] = -_weighted_mean(logits, patch_weights(batch["alpha"], logits.shape))
      loss = loss + adversarial_weight * parts["adversarial"]
    return loss, (parts, outputs["output"])

  (loss, (parts, output)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = lax.pmean(grads, DATA_AXIS)
  new_state = state.apply_gradients(grads=grads)
  if adversarial_weight:
    new_state, parts["discriminator"] = _discriminator_update(new_state, batch,
                                                              lax.stop_gradient(output))
  # param_norm is of the updated parameters, so a non-finite update is caught before saving.
  step_metrics = lax.pmean({"loss": loss, **parts, "grad_norm": optax.global_norm(grads),
                            "param_norm": optax.global_norm(new_state.params)}, DATA_AXIS)
  return new_state, step_metrics


def _discriminator_update(state: AdversarialTrainState, batch: Batch, output: jax.Array):
  """One Adam step of the discriminator's hinge loss (gradients averaged over the replicas)."""
  def loss_fn(d_params):
    apply = lambda images: state.discriminator_apply_fn({"params": d_params}, images)
    real, fake = apply(batch["clean"]), apply(output)
    return discriminator_hinge_loss(real, fake, patch_weights(batch["alpha"], real.shape))

  d_loss, d_grads = jax.value_and_grad(loss_fn)(state.discriminator_params)
  d_grads = lax.pmean(d_grads, DATA_AXIS)
  updates, opt_state = state.discriminator_tx.update(d_grads, state.discriminator_opt_state,
                                                     state.discriminator_params)
  return state.replace(discriminator_params=optax.apply_updates(state.discriminator_params,
                                                                updates),
                       discriminator_opt_state=opt_state), d_loss


def make_train_step(config: ml_collections.ConfigDict, mesh: Mesh) -> Callable:
  """The training loop's step: jit(shard_map): (state, resident faces, feed batch) -> (new state,
  metrics). Each replica draws its examples' masks (maskae.pairs) and updates on the pairs.

  `resident` holds the split's faces for the `device` feed ({} for the host feeds)."""
  spec = pairs.mask_spec(config)

  def per_replica_step(state: TrainState, resident: dict, batch: Batch):
    return _update(config, state, pairs.make_pairs(batch, resident, config.seed, "train", spec,
                                                   config.data.random_flip))

  # check_vma=False gives pmap semantics: each replica's gradient is its own (with the default
  # check_vma=True, autodiff already sums the cotangents of the replicated parameters over the
  # axis and the pmean would leave N times the mean gradient).
  step = jax.shard_map(per_replica_step, mesh=mesh, in_specs=(P(), P(), P(DATA_AXIS)),
                       out_specs=(P(), P()), check_vma=False)
  return jax.jit(step, donate_argnums=(0,))


def make_pair_train_step(config: ml_collections.ConfigDict, mesh: Mesh) -> Callable:
  """The step alone on ready-made pairs: jit(shard_map): (state, {"masked", "clean", "alpha"})
  -> (new state, metrics). For benchmarks and tests of the update itself."""
  def per_replica_step(state: TrainState, batch: Batch):
    return _update(config, state, batch)

  step = jax.shard_map(per_replica_step, mesh=mesh, in_specs=(P(), P(DATA_AXIS)),
                       out_specs=(P(), P()), check_vma=False)
  return jax.jit(step, donate_argnums=(0,))


def make_eval_step(config: ml_collections.ConfigDict, mesh: Mesh, split: str) -> Callable:
  """jit(shard_map): (params, apply_fn, resident faces, feed batch) -> (images, metrics), both
  per example and batch-sharded: images {"masked", "clean", "alpha", "output"} and metrics
  {name: model's value} plus {"input/" + name: the masked input's} (the do-nothing baseline)."""
  spec = pairs.mask_spec(config)

  @functools.partial(jax.jit, static_argnums=(1,))
  def eval_step(params, apply_fn, resident: dict, batch: Batch):
    def per_replica(params, resident, batch):
      pair = pairs.make_pairs(batch, resident, config.seed, split, spec)
      output = apply_fn({"params": params}, pair["masked"])["output"]
      scores = metrics_lib.image_metrics(output, pair["clean"], pair["alpha"])
      scores.update({f"input/{k}": v for k, v in metrics_lib.image_metrics(
          pair["masked"], pair["clean"], pair["alpha"]).items()})
      return {**pair, "output": output}, scores
    # check_vma=False as in the train step: the mask styles' branches mix per-replica and
    # constant values, which lax.switch would otherwise have to cast to one kind.
    return jax.shard_map(per_replica, mesh=mesh, in_specs=(P(), P(), P(DATA_AXIS)),
                         out_specs=(P(DATA_AXIS), P(DATA_AXIS)), check_vma=False)(
                             params, resident, batch)

  return eval_step


def shard_batch(batch: dict, mesh: Mesh) -> Batch:
  """Host-local numpy batch -> global jax.Arrays split over the `data` axis of all hosts."""
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def replicate(tree, mesh: Mesh):
  """Places a pytree replicated on every device of the mesh."""
  return jax.device_put(tree, NamedSharding(mesh, P()))
