"""The train state and one optimiser step.

The step is a pure function `(state, batch, lr) -> (state, metrics)`, jitted once with the state
donated. With `micro_batches = k > 1` it accumulates gradients so that the update equals the
one of the whole global batch *exactly*, also for the contrastive loss, which does not
decompose over micro-batches: a first pass computes every micro-batch's embeddings without
gradients, the global loss gives the gradient with respect to those embeddings, and a second
pass back-propagates it through each micro-batch in turn (the "GradCache" scheme, as in
open_clip's `accum_freq`). Memory then scales with the micro-batch, compute with 4/3.
"""

from __future__ import annotations

from typing import Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, PartitionSpec

from scaling_vlm.sharding import BATCH_AXES
from scaling_vlm.train import losses

Batch = dict[str, jax.Array]  # 'images' (B, H, W, 3) normalised floats, 'tokens' (B, T) int32


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  params: nnx.State
  opt_state: optax.OptState


def adamw(
    *,
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float,
    grad_clip: float,
    flatten: bool = False,
) -> optax.GradientTransformation:
  """AdamW after global-norm clipping, with weight decay on the weights only (`decay_mask`),
  at unit learning rate: the train step multiplies the update by -lr, the step's learning rate,
  which it takes as an argument (see `make_train_step`). That is optax.adamw exactly.

  `flatten` runs the clipping and Adam's moments on one flat vector of all parameters
  (`optax.flatten`): one fused update instead of one per parameter, at the price of a
  concatenation and a split per step. Weight decay stays per parameter, because the decay mask
  needs each parameter's shape. The update is the same either way; the optimiser state's
  layout is not, so a run cannot switch it when it resumes.
  """
  moments = optax.chain(optax.clip_by_global_norm(grad_clip), optax.scale_by_adam(b1, b2, eps))
  return optax.chain(
      optax.flatten(moments) if flatten else moments,
      optax.add_decayed_weights(weight_decay, decay_mask),
  )


# Parameters that get no weight decay, by name: as open_clip, gains, biases, the class token
# and the logit scale; as Mamba, the state matrix, the skip and the step-size bias. By name and
# not by rank (open_clip's `ndim < 2`), because scanned layers add a leading layer axis and
# attention biases are (3, heads, head_dim).
NO_DECAY = frozenset({'scale', 'bias', 'class_embedding', 'A_log', 'D', 'dt_bias'})


def decay_mask(params: nnx.State):
  """True for every parameter weight decay applies to."""

  def decays(path, _):
    names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
    return names[-1] not in NO_DECAY

  return jax.tree_util.tree_map_with_path(decays, params)


def make_train_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    loss_config: losses.LossConfig,
    *,
    mesh: Mesh | None = None,
    micro_batches: int = 1,
) -> Callable[[TrainState, Batch, jax.typing.ArrayLike], tuple[TrainState, dict[str, jax.Array]]]:
  """The jitted, state-donating train step `(state, batch, lr) -> (state, metrics)`.

  The learning rate is an argument, not a schedule traced into the step: runs that differ only
  in schedule, peak rate or warmup -- a sweep's constant, cosine and cooldown variants -- run
  one compiled program, so the persistent compilation cache compiles it once for all of them.
  """

  def train_step(state: TrainState, batch: Batch, lr: jax.typing.ArrayLike):
    metrics, grads = loss_and_grads(
        graphdef, state.params, batch, loss_config, mesh=mesh, micro_batches=micro_batches
    )
    direction, opt_state = optimizer.update(grads, state.opt_state, state.params)
    updates = optax.tree.scale(-lr, direction)
    model = nnx.merge(graphdef, optax.apply_updates(state.params, updates))
    model.logit_scale.clamp()
    params = nnx.state(model)
    grad_norm = optax.tree.norm(grads)
    # A non-finite loss or gradient leaves the state as it was; the loop sees `finite` and
    # stops, so the last good state (and every checkpoint) stays intact.
    finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = TrainState(
        step=state.step + finite.astype(state.step.dtype),
        params=keep(params, state.params),
        opt_state=keep(opt_state, state.opt_state),
    )
    metrics = {**metrics, 'grad_norm': grad_norm, 'lr': lr, 'finite': finite}
    return new_state, metrics

  return jax.jit(train_step, donate_argnums=0)


def loss_and_grads(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    batch: Batch,
    loss_config: losses.LossConfig,
    *,
    mesh: Mesh | None = None,
    micro_batches: int = 1,
) -> tuple[dict[str, jax.Array], nnx.State]:
  """Loss metrics and gradient of the whole batch, computed `micro_batches` rows at a time."""
  if micro_batches == 1:

    def loss_fn(params):
      outputs = nnx.merge(graphdef, params)(batch['images'], batch['tokens'])
      return losses.total_loss(outputs, batch['tokens'], loss_config, mesh=mesh)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return metrics, grads
  k = micro_batches
  micro = jax.tree.map(lambda x: _split(x, k, mesh), batch)
  captions = nnx.merge(graphdef, params).config.spec.captions

  # Pass 1: every micro-batch's embeddings, without gradients.
  def embed(mb):
    model = nnx.merge(graphdef, params)
    return model.encode_image(mb['images']), model.encode_text(mb['tokens'])

  image_emb, text_emb = jax.tree.map(lambda x: _merge(x, mesh), jax.lax.map(embed, micro))
  scales = nnx.merge(graphdef, params).logit_scale.outputs()

  # The global contrastive loss, and its gradient with respect to the embeddings and scales.
  def contrastive(image_emb, text_emb, scales):
    outputs = {'image_emb': image_emb, 'text_emb': text_emb, **scales}
    return losses.contrastive_term(outputs, loss_config, mesh=mesh)

  contrastive_loss, (d_image, d_text, d_scales) = jax.value_and_grad(contrastive, (0, 1, 2))(
      image_emb, text_emb, scales
  )
  d_image, d_text = _split(d_image, k, mesh), _split(d_text, k, mesh)
  pad = loss_config.pad_id
  caption_tokens = jnp.maximum(jnp.sum(batch['tokens'][:, 1:] != pad), 1)

  # Pass 2: back-propagate through each micro-batch. The surrogate's gradient is the true
  # one: embeddings enter linearly with their global gradient, the caption loss as its share
  # of the batch's token sum, and the logit scales once; the terms are weighted as the loss
  # weights them.
  def surrogate(params, mb, d_image, d_text, first):
    outputs = nnx.merge(graphdef, params)(mb['images'], mb['tokens'])
    linear = jnp.sum(outputs['image_emb'] * d_image) + jnp.sum(outputs['text_emb'] * d_text)
    linear += first * sum(jnp.sum(outputs[name] * d) for name, d in d_scales.items())
    terms = {'contrastive': linear}
    caption_sum = jnp.zeros(())
    if captions:
      mean, count = losses.caption_loss(outputs['caption_logits'], mb['tokens'][:, 1:], pad_id=pad)
      caption_sum = mean * count
      terms['caption'] = caption_sum / caption_tokens
    return losses.weighted_sum(terms, loss_config), caption_sum

  def accumulate(carry, xs):
    grads, caption_sum = carry
    mb, d_image, d_text, index = xs
    (_, part), g = jax.value_and_grad(surrogate, has_aux=True)(
        params, mb, d_image, d_text, (index == 0).astype(jnp.float32)
    )
    return (jax.tree.map(jnp.add, grads, g), caption_sum + part), None

  zero = (jax.tree.map(jnp.zeros_like, params), jnp.zeros(()))
  (grads, caption_sum), _ = jax.lax.scan(accumulate, zero, (micro, d_image, d_text, jnp.arange(k)))
  terms = {'contrastive': contrastive_loss}
  if captions:
    terms['caption'] = caption_sum / caption_tokens
  return losses.loss_metrics(terms, scales['logit_scale'], loss_config)[1], grads


def _split(x: jax.Array, k: int, mesh: Mesh | None) -> jax.Array:
  """(B, ...) -> (k, B/k, ...): micro-batch j holds rows j, j+k, j+2k, ..., so every device
  keeps contributing its own rows to every micro-batch."""
  x = jnp.swapaxes(x.reshape(x.shape[0] // k, k, *x.shape[1:]), 0, 1)
  return _constrain(x, mesh, PartitionSpec(None, BATCH_AXES))


def _merge(x: jax.Array, mesh: Mesh | None) -> jax.Array:
  """Inverse of `_split`."""
  x = jnp.swapaxes(x, 0, 1)
  return _constrain(x.reshape(-1, *x.shape[2:]), mesh, PartitionSpec(BATCH_AXES))


def _constrain(x: jax.Array, mesh: Mesh | None, spec: PartitionSpec) -> jax.Array:
  if mesh is None:
    return x
  return jax.lax.with_sharding_constraint(x, jax.sharding.NamedSharding(mesh, spec))


def create_state(params: nnx.State, optimizer: optax.GradientTransformation) -> TrainState:
  """A fresh state; jit it with `out_shardings` to build the optimiser state sharded."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))
