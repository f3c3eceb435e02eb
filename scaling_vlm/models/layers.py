"""Transformer building blocks shared by every tower.

Every parameter carries logical axis names (`embed`, `mlp`, `heads`, `kv`, `vocab`,
`layers`); `scaling_vlm.sharding` maps them onto the mesh, so nothing here knows about
devices. Parameters are float32; `dtype` is the compute dtype (bfloat16 for training).
Attention runs through `jax.nn.dot_product_attention`, which picks cuDNN flash attention
on GPUs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

Array = jax.Array
KVCache = tuple[Array, Array]  # keys, values: (batch, length, heads, head_dim)

# Scanned blocks get a leading `layers` axis; it stays unsharded (see sharding.RULES).
LAYERS_AXIS = 'layers'


def init(initializer: Callable, *axes: str | None) -> Callable:
  """An initializer annotated with logical axis names, resolved by `scaling_vlm.sharding`."""
  # eager_sharding=False: the model is built without a mesh; sharding.py places it.
  return nnx.with_partitioning(initializer, axes, eager_sharding=False)


def normal(std: float) -> Callable:
  return nnx.initializers.normal(std)


def uniform(bound: float) -> Callable:
  """U(-bound, bound)."""

  def initializer(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return initializer


def pytorch_default(fan_in: int) -> Callable:
  """nn.Linear's and nn.Conv2d's default, for weights and biases alike: U(+-1/sqrt(fan_in))
  (for weights, kaiming_uniform with a=sqrt(5) comes to that)."""
  return uniform(fan_in**-0.5)


def fan_in_normal(fan_in: int) -> Callable:
  """N(0, 1/fan_in): CLIMP's patch embedding, which has no reference to follow."""
  return normal(fan_in**-0.5)


def residual_std(width: int, depth: int) -> float:
  """open_clip's text-tower std of the weights that write into the residual stream: scaled
  down with the tower's depth, so that the stream's variance does not grow with it."""
  return width**-0.5 * (2 * depth) ** -0.5


zeros = nnx.initializers.zeros_init()
ones = nnx.initializers.ones_init()


def layer_norm(width: int, dtype, rngs: nnx.Rngs) -> nnx.LayerNorm:
  # open_clip uses PyTorch's default eps. Statistics are computed in float32 by flax.
  return nnx.LayerNorm(
      width,
      epsilon=1e-5,
      dtype=dtype,
      scale_init=init(ones, 'embed'),
      bias_init=init(zeros, 'embed'),
      rngs=rngs,
  )


@dataclasses.dataclass(frozen=True)
class BlockInit:
  """How a block's weights start: one initializer (without axis names) per tensor. Attention
  biases always start at zero, as nn.MultiheadAttention's do."""

  qkv: Callable  # the fused Q, K, V kernel; cross-attention's Q and KV kernels alike
  out: Callable
  fc: Callable
  fc_bias: Callable
  proj: Callable
  proj_bias: Callable

  @classmethod
  def pytorch(cls, width: int, mlp_width: int) -> BlockInit:
    """PyTorch's defaults, which open_clip's ViT and the MaMMUT decoder keep.
    nn.MultiheadAttention draws its fused (3W, W) in_proj xavier-uniform, U(+-sqrt(6 / 4W)),
    and leaves its out_proj (an nn.Linear) at Linear's default, as the MLP's weights and
    biases are."""
    return cls(
        qkv=uniform((6 / (4 * width)) ** 0.5),
        out=pytorch_default(width),
        fc=pytorch_default(width),
        fc_bias=pytorch_default(width),
        proj=pytorch_default(mlp_width),
        proj_bias=pytorch_default(mlp_width),
    )

  @classmethod
  def clip_text(cls, width: int, mlp_width: int, depth: int) -> BlockInit:
    """open_clip's `TextTransformer.init_parameters`: `scaled`'s weights. It sets the weights
    only: the MLP biases keep Linear's default."""
    return dataclasses.replace(
        cls.scaled(width, depth),
        fc_bias=pytorch_default(width),
        proj_bias=pytorch_default(mlp_width),
    )

  @classmethod
  def scaled(cls, width: int, depth: int) -> BlockInit:
    """Normal weights, residual-branch outputs scaled down with the tower's depth, and zero
    biases: CLIMP's MLPs, which have no reference to follow."""
    out_std = residual_std(width, depth)
    return cls(
        qkv=normal(width**-0.5),
        out=normal(out_std),
        fc=normal((2 * width) ** -0.5),
        fc_bias=zeros,
        proj=normal(out_std),
        proj_bias=zeros,
    )


def block_init(init: str, reference: BlockInit, width: int, depth: int) -> BlockInit:
  """A tower's block init under `ModelConfig.init`: the reference's, or 'scaled'."""
  return reference if init == 'open_clip' else BlockInit.scaled(width, depth)


class Attention(nnx.Module):
  """Multi-head attention. Self-attention fuses Q, K and V into one matmul; cross-attention
  projects its queries from `x` and keys/values from a context (see `context_kv`)."""

  def __init__(
      self,
      width: int,
      heads: int,
      *,
      cross: bool,
      inits: BlockInit,
      dtype,
      impl: str | None,
      rngs: nnx.Rngs,
  ):
    head_dim = width // heads

    def projection(n: int) -> nnx.LinearGeneral:  # n stacked (heads, head_dim) projections
      return nnx.LinearGeneral(
          width,
          (n, heads, head_dim),
          dtype=dtype,
          rngs=rngs,
          kernel_init=init(inits.qkv, 'embed', None, 'heads', 'kv'),
          bias_init=init(zeros, None, 'heads', 'kv'),
      )

    self.cross = cross
    self.impl = impl
    self.qkv = None if cross else projection(3)
    self.q = projection(1) if cross else None
    self.kv = projection(2) if cross else None
    self.out = nnx.LinearGeneral(
        (heads, head_dim),
        width,
        axis=(-2, -1),
        dtype=dtype,
        kernel_init=init(inits.out, 'heads', 'kv', 'embed'),
        bias_init=init(zeros, 'embed'),
        rngs=rngs,
    )

  def context_kv(self, context: Array) -> KVCache:
    """Keys and values of a cross-attention context; computed once per image when decoding."""
    kv = self.kv(context)
    return kv[:, :, 0], kv[:, :, 1]

  def __call__(
      self,
      x: Array,
      *,
      causal: bool = False,
      context_kv: KVCache | None = None,
      cache: KVCache | None = None,
      index: Array | None = None,
  ):
    """Attends `x` to itself, or to `context_kv` when cross-attention.

    With a `cache` (self-attention only) `x` holds one new token at position `index`: its keys
    and values are written into the cache, it attends to positions <= index, and the updated
    cache is returned alongside the output.
    """
    if self.cross:
      q = self.q(x)[:, :, 0]
      k, v = context_kv
    else:
      q, k, v = jnp.moveaxis(self.qkv(x), 2, 0)
    kv_lengths = None
    if cache is not None:
      k = jax.lax.dynamic_update_slice_in_dim(cache[0], k.astype(cache[0].dtype), index, 1)
      v = jax.lax.dynamic_update_slice_in_dim(cache[1], v.astype(cache[1].dtype), index, 1)
      cache = (k, v)
      kv_lengths = jnp.full((x.shape[0],), index + 1, jnp.int32)
      causal = False  # a single query at the newest position; lengths do the masking
    y = jax.nn.dot_product_attention(
        q,
        k.astype(q.dtype),
        v.astype(q.dtype),
        is_causal=causal,
        key_value_seq_lengths=kv_lengths,
        implementation=self.impl,
    )
    return self.out(y), cache


class Mlp(nnx.Module):

  def __init__(self, width: int, hidden: int, *, inits: BlockInit, dtype, rngs: nnx.Rngs):
    self.fc = nnx.Linear(
        width,
        hidden,
        dtype=dtype,
        rngs=rngs,
        kernel_init=init(inits.fc, 'embed', 'mlp'),
        bias_init=init(inits.fc_bias, 'mlp'),
    )
    self.proj = nnx.Linear(
        hidden,
        width,
        dtype=dtype,
        rngs=rngs,
        kernel_init=init(inits.proj, 'mlp', 'embed'),
        bias_init=init(inits.proj_bias, 'embed'),
    )

  def __call__(self, x: Array) -> Array:
    # exact (erf) GELU as in open_clip's nn.GELU
    return self.proj(jax.nn.gelu(self.fc(x), approximate=False))


class LayerScale(nnx.Module):

  def __init__(self, width: int, value: float):
    self.gamma = nnx.Param(
        jnp.full((width,), value, jnp.float32), out_sharding=('embed',), eager_sharding=False
    )

  def __call__(self, x: Array) -> Array:
    return x * self.gamma[...].astype(x.dtype)


class Block(nnx.Module):
  """Pre-LN residual block: attention, then (optionally) an MLP.

  With `cross=True` the attention reads a context (image tokens), which gets its own
  LayerNorm; a block with `mlp=False` is attention only (some MaMMUT decoder blocks).
  """

  def __init__(
      self,
      width: int,
      heads: int,
      mlp_width: int,
      *,
      inits: BlockInit,
      dtype,
      impl: str | None,
      rngs: nnx.Rngs,
      cross: bool = False,
      mlp: bool = True,
      layer_scale: float | None = None,
  ):
    self.ln_1 = layer_norm(width, dtype, rngs)
    self.ln_1_kv = layer_norm(width, dtype, rngs) if cross else None
    self.attn = Attention(width, heads, cross=cross, inits=inits, dtype=dtype, impl=impl, rngs=rngs)
    self.ls_1 = LayerScale(width, layer_scale) if layer_scale else None
    self.ln_2 = layer_norm(width, dtype, rngs) if mlp else None
    self.mlp = Mlp(width, mlp_width, inits=inits, dtype=dtype, rngs=rngs) if mlp else None
    self.ls_2 = LayerScale(width, layer_scale) if layer_scale and mlp else None

  def context_kv(self, context: Array) -> KVCache:
    return self.attn.context_kv(self.ln_1_kv(context))

  def __call__(
      self,
      x: Array,
      *,
      causal: bool = False,
      context_kv: KVCache | None = None,
      cache: KVCache | None = None,
      index: Array | None = None,
  ):
    y, cache = self.attn(
        self.ln_1(x), causal=causal, context_kv=context_kv, cache=cache, index=index
    )
    x = x + (self.ls_1(y) if self.ls_1 else y)
    if self.mlp is not None:
      y = self.mlp(self.ln_2(x))
      x = x + (self.ls_2(y) if self.ls_2 else y)
    return x, cache


REMAT_POLICIES: dict[str, Any] = {
    'full': None,  # save nothing, recompute everything in the backward pass
    'dots': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Stack(nnx.Module):
  """`n` identical layers applied in order: a Python list, or one stacked module scanned with
  `nnx.scan` (`scan=True`), which compiles once whatever the depth.

  Each layer is called as `layer(x, carry_in) -> (x, carry_out)`, where `carry_in` is this
  layer's slice of an optional per-layer pytree (a KV cache when decoding), stacked along a
  leading layer axis; the stacked `carry_out` is returned beside `x`.
  """

  def __init__(
      self,
      make_layer: Callable[[nnx.Rngs], nnx.Module],
      n: int,
      *,
      scan: bool,
      remat: str,
      rngs: nnx.Rngs,
  ):
    self.n, self.scan, self.remat = n, scan, remat
    if scan:
      make = nnx.vmap(
          make_layer, in_axes=0, out_axes=0, transform_metadata={nnx.PARTITION_NAME: LAYERS_AXIS}
      )
      self.layers = nnx.split_rngs(splits=n)(make)(rngs)
    else:
      self.layers = nnx.List([make_layer(rngs) for _ in range(n)])

  def __call__(self, x: Array, apply: Callable, per_layer: Any = None):
    """Runs `apply(layer, x, per_layer_slice) -> (x, out_slice)` through all layers."""
    if self.remat != 'none':
      apply = nnx.remat(apply, policy=REMAT_POLICIES[self.remat])
    if self.scan:
      step = nnx.scan(
          apply,
          in_axes=(0, nnx.Carry, 0),
          out_axes=(nnx.Carry, 0),
          transform_metadata={nnx.PARTITION_NAME: LAYERS_AXIS},
      )
      return step(self.layers, x, per_layer)
    outs = []
    for i, layer in enumerate(self.layers):
      x, out = apply(layer, x, jax.tree.map(lambda a, i=i: a[i], per_layer))
      outs.append(out)
    return x, jax.tree.map(lambda *a: jnp.stack(a), *outs)


def check_tokens(tokens: Array, context_length: int, vocab_size: int) -> None:
  """Rejects token arrays the text tower cannot embed. Ids are checked only when concrete
  (outside jit); the data pipeline validates them before they reach a jitted step."""
  if tokens.ndim != 2:
    raise ValueError(f'tokens must be (batch, length), got shape {tokens.shape}.')
  if tokens.shape[1] > context_length:
    raise ValueError(
        f'Text length {tokens.shape[1]} exceeds the positional table of '
        f'{context_length} positions; use at most {context_length} tokens.'
    )
  concrete = not isinstance(tokens, jax.core.Tracer) and (
      not isinstance(tokens, jax.Array) or tokens.is_fully_addressable
  )
  if concrete:
    ids = np.asarray(tokens)  # numpy: no device op, and no tracer inside an enclosing jit
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
      bad = low if low < 0 else high
      raise ValueError(
          f'Token id {bad} is outside the vocabulary; allowed ids are 0..{vocab_size - 1}.'
      )


def embedding(rngs: nnx.Rngs, shape: tuple[int, ...], std: float, axes: tuple) -> nnx.Param:
  """A free-standing learned tensor (positions, class token, projections) with axis names."""
  return nnx.Param(
      normal(std)(rngs.params(), shape, jnp.float32), out_sharding=axes, eager_sharding=False
  )


# CLIP clamps the learnable temperature to [0, ln 100] after every optimiser step.
LOGIT_SCALE_MAX = math.log(100.0)


class LogitScale(nnx.Module):
  """The learnable log-temperature of the contrastive logits, and SigLIP's bias if used."""

  def __init__(self, init_scale: float, init_bias: float | None):
    self.scale = nnx.Param(jnp.asarray(init_scale, jnp.float32))
    self.bias = None if init_bias is None else nnx.Param(jnp.asarray(init_bias, jnp.float32))

  def clamp(self) -> None:
    self.scale[...] = jnp.clip(self.scale[...], 0.0, LOGIT_SCALE_MAX)

  def outputs(self) -> dict[str, Array]:
    out = {'logit_scale': self.scale[...]}
    if self.bias is not None:
      out['logit_bias'] = self.bias[...]
    return out


def l2_normalize(x: Array) -> Array:
  """Unit-norm embeddings, in float32 whatever the compute dtype."""
  x = x.astype(jnp.float32)
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
