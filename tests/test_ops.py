"""The CPU kernels of `maskae.ops` against the textbook ops: values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskae import ops


def test_composite_gradient_is_the_textbook_gradient():
  keys = jax.random.split(jax.random.key(0), 4)
  mask = jax.random.uniform(keys[0], (2, 5, 6, 1))
  raw, images, cotangent = (jax.random.uniform(k, (2, 5, 6, 3)) for k in keys[1:])
  textbook = lambda m, r, i: m * r + (1 - m) * i
  np.testing.assert_allclose(ops.composite(mask, raw, images), textbook(mask, raw, images),
                             atol=1e-6)
  grads = jax.vjp(ops.composite, mask, raw, images)[1](cotangent)
  for g, r in zip(grads, jax.vjp(textbook, mask, raw, images)[1](cotangent)):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernel_size, factor", [
    (3, 4), *[pytest.param(*case, marks=pytest.mark.slow)
              for case in ((2, 2), (3, 2), (5, 2), (4, 3), (1, 4))]])
def test_upsampled_conv_is_conv_of_nearest_upsample(kernel_size, factor):
  x = jax.random.normal(jax.random.key(1), (2, 5, 6, 4))
  fused = ops.UpsampledConv(7, kernel_size, factor)
  plain = nn.Conv(7, (kernel_size, kernel_size))
  params = fused.init(jax.random.key(0), x)["params"]
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(
      jnp.shape, plain.init(jax.random.key(0), x)["params"])
  params["bias"] = jax.random.normal(jax.random.key(2), (7,))
  upsample = lambda x: jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
  out = lambda p, x: fused.apply({"params": p}, x)
  ref = lambda p, x: plain.apply({"params": p}, upsample(x))
  np.testing.assert_allclose(out(params, x), ref(params, x), rtol=1e-5, atol=1e-5)
  cotangent = jax.random.normal(jax.random.key(3), (2, 5 * factor, 6 * factor, 7))
  grads = jax.vjp(out, params, x)[1](cotangent)
  ref_grads = jax.vjp(ref, params, x)[1](cotangent)
  for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_max_pool_gradient_goes_to_the_first_maximum_like_nn_max_pool():
  x = jnp.asarray(np.random.default_rng(0).integers(0, 3, (2, 7, 6, 3)), jnp.float32)  # many ties
  reference = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  cotangent = jax.random.normal(jax.random.key(0), (2, 3, 3, 3))
  np.testing.assert_array_equal(ops.max_pool_2x2(x), reference(x))
  np.testing.assert_array_equal(jax.vjp(ops.max_pool_2x2, x)[1](cotangent)[0],
                                jax.vjp(reference, x)[1](cotangent)[0])


def test_relu_max_pool_is_the_pool_of_the_relu():
  x = jax.random.normal(jax.random.key(0), (2, 6, 8, 3))
  reference = lambda x: nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
  cotangent = jax.random.normal(jax.random.key(1), (2, 3, 4, 3))
  np.testing.assert_array_equal(ops.relu_max_pool(x), reference(x))
  np.testing.assert_array_equal(jax.vjp(ops.relu_max_pool, x)[1](cotangent)[0],
                                jax.vjp(reference, x)[1](cotangent)[0])
