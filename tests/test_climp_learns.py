"""A CLIMP tower learns what only its selective scan can carry (scaling_vlm/models/CLIMP_NOTES.md).

The text tower reads `SOT key filler... EOT` and its pooled EOT embedding must name the key word,
17 tokens back: beyond the reach of the three stacked width-4 causal convolutions (10 tokens), so
the only path is the scan's state. A broken scan, backward pass or EOT pooling leaves the loss at
chance (ln 8 = 2.08); the tower as it is gets it to near zero within 150 steps.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling_vlm import models
from scaling_vlm.models.climp import MambaTextTower
from scaling_vlm.train import step as step_lib

KEYS, LENGTH, BATCH, GAP = 8, 24, 32, 16  # key words, text length, batch, fillers after the key


def key_and_filler_texts(key, config):
  """`SOT key filler x GAP EOT pad...`: key words are ids 1..KEYS, fillers KEYS+1..199."""
  k1, k2 = jax.random.split(key)
  labels = jax.random.randint(k1, (BATCH,), 0, KEYS)
  tokens = jax.random.randint(k2, (BATCH, LENGTH), KEYS + 1, 200)
  tokens = tokens.at[:, 0].set(config.text.sot_id).at[:, 1].set(labels + 1)
  tokens = tokens.at[:, GAP + 2].set(config.text.eot_id)
  return jnp.where(jnp.arange(LENGTH) > GAP + 2, 0, tokens), labels


def test_text_tower_carries_a_word_through_the_scan_to_eot():
  config = models.get_config('climp_tiny-1')
  assert config.text.layers * (config.text_ssm.conv - 1) + 1 < GAP + 1  # out of the convs' reach
  graphdef, params = nnx.split(MambaTextTower(config, nnx.Rngs(params=0)))
  targets = jax.random.normal(jax.random.key(1), (KEYS, config.embed_dim))
  targets /= jnp.linalg.norm(targets, axis=-1, keepdims=True)
  optimizer = step_lib.adamw(b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.0, grad_clip=1.0)

  def loss(params, tokens, labels):
    embedding = nnx.merge(graphdef, params)(tokens)
    embedding /= jnp.linalg.norm(embedding, axis=-1, keepdims=True)
    logits = 10.0 * embedding @ targets.T
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  @jax.jit
  def step(params, opt_state, key):
    value, grads = jax.value_and_grad(loss)(params, *key_and_filler_texts(key, config))
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, optax.tree.scale(-3e-3, updates)), opt_state, value

  opt_state, history = optimizer.init(params), []
  for i in range(150):
    params, opt_state, value = step(params, opt_state, jax.random.key(100 + i))
    history.append(float(value))
  chance = np.log(KEYS)
  assert np.mean(history[:20]) > chance - 0.2, history[:20]  # it starts knowing nothing
  assert np.mean(history[-20:]) < chance - 1.5, history[-20:]  # and ends knowing the key
