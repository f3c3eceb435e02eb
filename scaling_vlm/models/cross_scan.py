"""VMamba's 2D cross-scan: a grid of tokens read as 1D sequences in several orders, and back.

A causal scan over one raster order lets a patch see only the patches before it. Reading the
grid row-major and column-major, each forwards and backwards, and averaging the four outputs
back in the original order gives every patch a view of the whole image in linear time.

    row          0 1 2 3 4 5        (a 2 x 3 grid of raster indices)
    row_reverse  5 4 3 2 1 0
    col          0 3 1 4 2 5
    col_reverse  5 2 4 1 3 0

Orders are transposes and flips, not gathers, so XLA lowers them to cheap copies.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from scaling_vlm.models.config import VISION_DIRECTIONS

Array = jax.Array


def _check(directions) -> None:
  for direction in directions:
    if direction not in VISION_DIRECTIONS:
      raise ValueError(
          f'scan direction {direction!r} is not allowed; choose from {list(VISION_DIRECTIONS)}.'
      )


def _transpose(x: Array, height: int, width: int) -> Array:
  """(B, H*W, C) row-major -> (B, W*H, C) column-major."""
  b, _, c = x.shape
  return x.reshape(b, height, width, c).transpose(0, 2, 1, 3).reshape(b, height * width, c)


def cross_scan(x: Array, height: int, width: int, directions) -> Array:
  """(B, H*W, C) tokens in row-major order -> (B, K, H*W, C), one sequence per direction."""
  _check(directions)
  cols = _transpose(x, height, width) if any(d.startswith('col') for d in directions) else None
  orders = {
      'row': lambda: x,
      'row_reverse': lambda: jnp.flip(x, axis=1),
      'col': lambda: cols,
      'col_reverse': lambda: jnp.flip(cols, axis=1),
  }
  return jnp.stack([orders[d]() for d in directions], axis=1)


def cross_merge(y: Array, height: int, width: int, directions) -> Array:
  """(B, K, H*W, C) outputs in each direction's order -> (B, H*W, C) in row-major order, the
  mean over directions (so the output scale does not depend on how many there are)."""
  _check(directions)
  if y.shape[1] != len(directions):
    raise ValueError(f'{y.shape[1]} scanned sequences for {len(directions)} directions.')
  rows, cols = [], []
  for k, direction in enumerate(directions):
    seq = jnp.flip(y[:, k], axis=1) if direction.endswith('_reverse') else y[:, k]
    (cols if direction.startswith('col') else rows).append(seq)
  total = sum(rows) if rows else 0
  if cols:  # column-major sequences share one transpose back to row-major
    total = total + _transpose(sum(cols), width, height)
  return total / len(directions)
