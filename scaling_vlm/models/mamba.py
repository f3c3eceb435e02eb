"""The Mamba-1 mixer and the residual block that CLIMP's towers stack.

Mixer (Mamba's, with VMamba's 2D variant): an input projection to a gated pair (u, z) of
`expand` x width channels, a depthwise convolution (causal 1D over tokens for text, k x k
over the patch grid for images), SiLU, the selective scan in each direction with its own
Δ, B, C, A and D, the directions merged back and averaged, the gate y ⊙ SiLU(z), and an
output projection.

Logical axes: the inner channels are `mlp`, so under tensor parallelism the input projection
is split by columns and the output projection by rows as in a transformer MLP, while the
convolution and the scan, which never mix channels, run on each shard's channels locally.
Scan directions, the state and the step-size rank are small and stay unsharded.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm.models import cross_scan, layers
from scaling_vlm.models.config import SSMConfig
from scaling_vlm.models.selective_scan import selective_scan

Array = jax.Array

# Mamba's initial step sizes: log-uniform in [DT_MIN, DT_MAX], floored at DT_FLOOR.
DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4


def _param(rngs: nnx.Rngs, init, shape: tuple[int, ...], axes: tuple) -> nnx.Param:
  return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=axes, eager_sharding=False)


# Initializers compiled whole: eagerly, each of their ops would compile once per shape.
@functools.partial(jax.jit, static_argnums=(1, 2))
def _dt_bias_init(key, shape, dtype):
  """softplus⁻¹ of Mamba's initial steps, so that softplus(bias) starts in [DT_MIN, DT_MAX]."""
  u = jax.random.uniform(key, shape, dtype)
  dt = jnp.maximum(jnp.exp(u * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN)), DT_FLOOR)
  return dt + jnp.log(-jnp.expm1(-dt))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _a_log_init(key, shape, dtype):
  """S4D-real: A = -(1, 2, ..., N) for every channel, stored as log(-A) so it stays < 0."""
  del key
  return jnp.broadcast_to(jnp.log(jnp.arange(1, shape[-1] + 1, dtype=dtype)), shape)


class DepthwiseConv(nnx.Module):
  """A depthwise convolution with bias: causal over a sequence (the text must not see later
  tokens), or k x k with 'same' padding over a (B, H, W, C) grid.

  Written as k (or k²) shifted multiply-adds rather than a grouped `lax.conv`: XLA's SPMD
  partitioner mishandles grouped convolutions whose batch and channels are split over
  different mesh axes (the kernel gradient came out doubled on a data x tensor mesh, and
  batch-sharded ones are all-gathered), and with a handful of taps this is as fast.
  """

  def __init__(self, channels: int, size: int, *, two_d: bool, rngs: nnx.Rngs):
    shape = (size, size, channels) if two_d else (size, channels)
    # PyTorch's default conv init (uniform, bound 1/sqrt(fan_in)) has this standard deviation.
    std = (3 * size ** len(shape[:-1])) ** -0.5
    self.kernel = _param(rngs, layers.normal(std), shape, (*(None,) * (len(shape) - 1), 'mlp'))
    self.bias = _param(rngs, layers.zeros, (channels,), ('mlp',))
    self.two_d, self.size = two_d, size

  def __call__(self, x: Array) -> Array:
    k = self.size
    kernel, bias = self.kernel[...].astype(x.dtype), self.bias[...].astype(x.dtype)
    if not self.two_d:  # (B, L, C): y_t = sum_j kernel[j] x_{t - (k - 1) + j}
      padded = jnp.pad(x, ((0, 0), (k - 1, 0), (0, 0)))
      length = x.shape[1]
      return sum(kernel[j] * padded[:, j : j + length] for j in range(k)) + bias
    h, w = x.shape[1:3]  # (B, H, W, C), 'same' padding as lax.conv's
    padded = jnp.pad(x, ((0, 0), ((k - 1) // 2, k // 2), ((k - 1) // 2, k // 2), (0, 0)))
    taps = (kernel[i, j] * padded[:, i : i + h, j : j + w] for i in range(k) for j in range(k))
    return sum(taps) + bias


class Mixer(nnx.Module):
  """Mamba-1 over a token sequence (`two_d=False`: causal), or VMamba's SS2D over a patch grid
  whose shape is given at call time, so one model reads any resolution."""

  def __init__(
      self,
      width: int,
      ssm: SSMConfig,
      *,
      two_d: bool,
      out_std: float,
      dtype,
      rngs: nnx.Rngs,
  ):
    inner, rank, n = ssm.expand * width, ssm.rank(width), ssm.state
    k = len(ssm.directions)
    self.ssm, self.two_d, self.rank = ssm, two_d, rank
    self.in_proj = nnx.LinearGeneral(
        width,
        (2, inner),
        use_bias=False,
        dtype=dtype,
        rngs=rngs,
        kernel_init=layers.init(layers.normal(width**-0.5), 'embed', None, 'mlp'),
    )
    self.conv = DepthwiseConv(inner, ssm.conv, two_d=two_d, rngs=rngs)
    # One set of Δ, B, C, A and D parameters per scan direction (the leading axis).
    self.x_proj = _param(
        rngs, layers.normal(inner**-0.5), (k, inner, rank + 2 * n), (None, 'mlp', None)
    )
    self.dt_proj = _param(rngs, layers.uniform(rank**-0.5), (k, rank, inner), (None, None, 'mlp'))
    self.dt_bias = _param(rngs, _dt_bias_init, (k, inner), (None, 'mlp'))
    self.A_log = _param(rngs, _a_log_init, (k, inner, n), (None, 'mlp', None))
    self.D = _param(rngs, layers.ones, (k, inner), (None, 'mlp'))
    self.out_proj = nnx.Linear(
        inner,
        width,
        use_bias=False,
        dtype=dtype,
        rngs=rngs,
        kernel_init=layers.init(layers.normal(out_std), 'mlp', 'embed'),
    )

  def __call__(self, x: Array, grid: tuple[int, int] | None = None) -> Array:
    """(B, L, width) -> (B, L, width). With two_d, `grid` = (H, W) and the L = H * W tokens
    are in row-major order."""
    uz = self.in_proj(x)
    u, z = uz[..., 0, :], uz[..., 1, :]
    if self.two_d:
      h, w = grid
      u = self.conv(u.reshape(u.shape[0], h, w, u.shape[-1])).reshape(u.shape)
      seqs = cross_scan.cross_scan(jax.nn.silu(u), h, w, self.ssm.directions)  # (B, K, L, inner)
    else:
      seqs = jax.nn.silu(self.conv(u))[:, None]  # the text's one causal direction
    proj = jnp.einsum('bkli,kir->bklr', seqs, self.x_proj[...].astype(seqs.dtype))
    dt, B, C = jnp.split(proj, [self.rank, self.rank + self.ssm.state], axis=-1)
    dt = jnp.einsum('bklr,kri->bkli', dt, self.dt_proj[...].astype(dt.dtype))
    dt = jax.nn.softplus(dt.astype(jnp.float32) + self.dt_bias[...][:, None, :])
    y, _ = selective_scan(
        seqs,
        dt,
        -jnp.exp(self.A_log[...]),
        B,
        C,
        self.D[...],
        impl=self.ssm.scan_impl,
        chunk=self.ssm.chunk,
    )
    y = cross_scan.cross_merge(y, h, w, self.ssm.directions) if self.two_d else y[:, 0]
    return self.out_proj(y * jax.nn.silu(z))


class MambaBlock(nnx.Module):
  """Pre-LN residual block: the mixer, then an MLP when `mlp_width` > 0 (VMamba's VSS block);
  without one it is Mamba's LM block."""

  def __init__(
      self,
      width: int,
      mlp_width: int,
      ssm: SSMConfig,
      *,
      two_d: bool,
      depth: int,
      dtype,
      rngs: nnx.Rngs,
  ):
    # As open_clip's text tower: residual-branch outputs scaled down with the tower's depth.
    out_std = layers.residual_std(width, depth)
    self.ln_1 = layers.layer_norm(width, dtype, rngs)
    self.mixer = Mixer(width, ssm, two_d=two_d, out_std=out_std, dtype=dtype, rngs=rngs)
    self.ln_2 = layers.layer_norm(width, dtype, rngs) if mlp_width else None
    inits = layers.BlockInit.scaled(width, depth)
    self.mlp = (
        layers.Mlp(width, mlp_width, inits=inits, dtype=dtype, rngs=rngs) if mlp_width else None
    )

  def __call__(self, x: Array, grid: tuple[int, int] | None = None) -> Array:
    x = x + self.mixer(self.ln_1(x), grid)
    if self.mlp is not None:
      x = x + self.mlp(self.ln_2(x))
    return x
