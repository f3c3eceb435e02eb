"""The training loss and its terms: contrastive (CLIP softmax / SigLIP sigmoid) and captioning.

Both step paths (whole batch, and micro-batches in `step.loss_and_grads`) build the loss from
the same terms with the same weights: `weighted_sum` and `loss_metrics`.

The contrastive losses are defined over the global batch but never materialise the
global B x B logits on one device: under a mesh each device all-gathers the embeddings
of the other modality and builds only its (local B) x (global B) block of logits, and
the per-shard sums are combined with a psum. shard_map's autodiff transposes the
all_gather into a reduce-scatter, so gradients are those of the global-batch loss.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec as P

from scaling_vlm.sharding import BATCH_AXES

# local_sum(img_rows, txt_rows, all_img, all_txt, row_offset, *scalars) -> the loss
# summed over this shard's rows; row_offset is the global index of its first row.
LocalSum = Callable[..., jax.Array]


def _softmax_local_sum(
    img: jax.Array,
    txt: jax.Array,
    all_img: jax.Array,
    all_txt: jax.Array,
    offset: jax.Array,
    logit_scale: jax.Array,
) -> jax.Array:
  """Sum over local rows of (image->text CE + text->image CE) / 2."""
  scale = jnp.exp(logit_scale)
  labels = offset + jnp.arange(img.shape[0])  # positive pair = same global row
  ce = optax.softmax_cross_entropy_with_integer_labels
  i2t = ce(scale * img @ all_txt.T, labels)
  t2i = ce(scale * txt @ all_img.T, labels)
  return (i2t.sum() + t2i.sum()) / 2


def _sigmoid_local_sum(
    img: jax.Array,
    txt: jax.Array,
    all_img: jax.Array,
    all_txt: jax.Array,
    offset: jax.Array,
    logit_scale: jax.Array,
    logit_bias: jax.Array,
) -> jax.Array:
  """Sum of -log sigmoid(z_ij * logit_ij) over local image rows i and all texts j.

  The pairwise sum is symmetric in its two modalities, so image rows against all
  texts already cover every (i, j) once; txt and all_img go unused (XLA drops them).
  """
  del txt, all_img
  logits = jnp.exp(logit_scale) * img @ all_txt.T + logit_bias
  rows = offset + jnp.arange(img.shape[0])
  positive = rows[:, None] == jnp.arange(all_txt.shape[0])[None, :]
  return -jax.nn.log_sigmoid(jnp.where(positive, logits, -logits)).sum()


def _global_mean(
    local_sum: LocalSum,
    image_emb: jax.Array,
    text_emb: jax.Array,
    scalars: tuple[jax.Array, ...],
    mesh: Mesh | None,
    batch_axes: tuple[str, ...],
) -> jax.Array:
  """local_sum summed over the global batch, divided by the global batch size."""
  image_emb = image_emb.astype(jnp.float32)
  text_emb = text_emb.astype(jnp.float32)
  scalars = tuple(jnp.asarray(s, jnp.float32) for s in scalars)
  if mesh is None:
    total = local_sum(image_emb, text_emb, image_emb, text_emb, 0, *scalars)
    return total / image_emb.shape[0]

  def per_shard(img: jax.Array, txt: jax.Array, *scalars: jax.Array) -> jax.Array:
    all_img = jax.lax.all_gather(img, batch_axes, tiled=True)
    all_txt = jax.lax.all_gather(txt, batch_axes, tiled=True)
    # axis_index over a tuple is row-major, matching P(batch_axes) and all_gather.
    offset = jax.lax.axis_index(batch_axes) * img.shape[0]
    return jax.lax.psum(local_sum(img, txt, all_img, all_txt, offset, *scalars), batch_axes)

  batch = P(batch_axes)
  total = jax.shard_map(
      per_shard, mesh=mesh, in_specs=(batch, batch) + (P(),) * len(scalars), out_specs=P()
  )(image_emb, text_emb, *scalars)
  return total / image_emb.shape[0]


def contrastive_loss(
    image_emb: jax.Array,
    text_emb: jax.Array,
    logit_scale: jax.Array,
    *,
    mesh: Mesh | None = None,
    batch_axes: tuple[str, ...] = BATCH_AXES,
) -> jax.Array:
  """Symmetric softmax InfoNCE (CLIP) over the global batch, in float32.

  image_emb, text_emb: (B, D) L2-normalised, batch dim sharded over batch_axes when a
  mesh is given. logit_scale is the log of the temperature scale (the learnable
  parameter); the logits are exp(logit_scale) * <x_i, y_j>. Returns the mean of the
  image->text and text->image cross-entropies, each averaged over the global batch.
  """
  return _global_mean(_softmax_local_sum, image_emb, text_emb, (logit_scale,), mesh, batch_axes)


def sigmoid_loss(
    image_emb: jax.Array,
    text_emb: jax.Array,
    logit_scale: jax.Array,
    logit_bias: jax.Array,
    *,
    mesh: Mesh | None = None,
    batch_axes: tuple[str, ...] = BATCH_AXES,
) -> jax.Array:
  """SigLIP loss: -sum_ij log sigmoid(z_ij (exp(logit_scale) <x_i, y_j> + bias)) / B,
  with z_ij = +1 on the diagonal and -1 elsewhere; float32."""
  return _global_mean(
      _sigmoid_local_sum, image_emb, text_emb, (logit_scale, logit_bias), mesh, batch_axes
  )


def caption_loss(
    logits: jax.Array, labels: jax.Array, *, pad_id: int = 0
) -> tuple[jax.Array, jax.Array]:
  """Token cross-entropy in float32, averaged over the non-pad labels of the batch.

  logits (B, T, V), labels (B, T) int. Returns (mean loss, number of counted tokens).
  """
  ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  mask = labels != pad_id
  count = mask.sum()
  # Averaging over the whole batch's tokens (not per sequence) weights every token
  # equally; the max() only guards an all-pad batch against 0/0.
  return jnp.where(mask, ce, 0.0).sum() / jnp.maximum(count, 1), count


def _softmax_term(outputs: dict[str, jax.Array], mesh: Mesh | None) -> jax.Array:
  return contrastive_loss(
      outputs['image_emb'], outputs['text_emb'], outputs['logit_scale'], mesh=mesh
  )


def _sigmoid_term(outputs: dict[str, jax.Array], mesh: Mesh | None) -> jax.Array:
  if 'logit_bias' not in outputs:
    raise ValueError(
        "contrastive='sigmoid' needs outputs['logit_bias'], " 'but the model did not return one'
    )
  return sigmoid_loss(
      outputs['image_emb'],
      outputs['text_emb'],
      outputs['logit_scale'],
      outputs['logit_bias'],
      mesh=mesh,
  )


# The contrastive losses by name (`loss.contrastive`): (model outputs, mesh) -> the loss.
CONTRASTIVE_TERMS = {'softmax': _softmax_term, 'sigmoid': _sigmoid_term}


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """How the contrastive and captioning terms are chosen and weighted."""

  contrastive: str = 'softmax'  # a key of CONTRASTIVE_TERMS: 'softmax' (CLIP) | 'sigmoid'
  contrastive_weight: float = 1.0
  caption_weight: float = 2.0  # MaMMUT: loss = 1.0 * contrastive + 2.0 * caption
  pad_id: int = 0

  def __post_init__(self) -> None:
    if self.contrastive not in CONTRASTIVE_TERMS:
      raise ValueError(
          f'LossConfig.contrastive={self.contrastive!r}; expected one of '
          f'{tuple(CONTRASTIVE_TERMS)}'
      )
    for name in ('contrastive_weight', 'caption_weight'):
      if getattr(self, name) < 0:
        raise ValueError(f'LossConfig.{name} must be >= 0, ' f'got {getattr(self, name)}')

  def weight(self, term: str) -> float:
    return {'contrastive': self.contrastive_weight, 'caption': self.caption_weight}[term]


def contrastive_term(
    outputs: dict[str, jax.Array], config: LossConfig, *, mesh: Mesh | None = None
) -> jax.Array:
  """The global-batch contrastive loss `config.contrastive` names."""
  return CONTRASTIVE_TERMS[config.contrastive](outputs, mesh)


def weighted_sum(terms: dict[str, jax.Array], config: LossConfig) -> jax.Array:
  """The training loss from its terms ('contrastive', and 'caption' for a model that
  captions: `Arch.loss_terms`), each times its weight."""
  return sum(config.weight(name) * value for name, value in terms.items())


def loss_metrics(
    terms: dict[str, jax.Array], logit_scale: jax.Array, config: LossConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(loss, metrics): the weighted sum, each term as `<term>_loss`, and the logit scale
  itself, exp(log scale)."""
  loss = weighted_sum(terms, config)
  metrics = {f'{name}_loss': value for name, value in terms.items()}
  metrics['logit_scale'] = jnp.exp(jnp.asarray(logit_scale, jnp.float32))
  metrics['loss'] = loss
  return loss, metrics


def total_loss(
    outputs: dict[str, jax.Array],
    tokens: jax.Array,
    config: LossConfig = LossConfig(),
    *,
    mesh: Mesh | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Weighted contrastive (+ captioning, if the model returned caption_logits) loss.

  outputs: 'image_emb', 'text_emb', 'logit_scale' (log scale), 'logit_bias' (sigmoid
  only) and optionally 'caption_logits' (B, T-1, V) predicting tokens[:, 1:].
  Returns (loss, metrics) as `loss_metrics`.
  """
  terms = {'contrastive': contrastive_term(outputs, config, mesh=mesh)}
  if 'caption_logits' in outputs:
    caption, _ = caption_loss(outputs['caption_logits'], tokens[:, 1:], pad_id=config.pad_id)
    terms['caption'] = caption
  return loss_metrics(terms, outputs['logit_scale'], config)
