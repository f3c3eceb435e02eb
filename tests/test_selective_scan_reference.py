"""The selective scan and the 2D cross-scan against an independent, obviously-correct model.

The reference is the S6 recurrence written out as a Python loop over time, in float64, one
sequence at a time, with every 2D order spelled as an explicit list of grid positions (no flips
or transposes); its gradients are `jax.grad` of that loop. Nothing in it is shared with
`selective_scan.py` or `cross_scan.py`, so a mistake there (in the chunking, the padding of the
last chunk, the hand-written backward pass, or an order and its inverse) cannot hide in both.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling_vlm.models import cross_scan
from scaling_vlm.models.config import VISION_DIRECTIONS
from scaling_vlm.models.selective_scan import selective_scan


def loop_scan(x, dt, A, B, C, D, h):
  """One sequence: x, dt (L, d); A (d, N); B, C (L, N); D (d,); h (d, N) the state before."""
  ys = []
  for t in range(x.shape[0]):
    h = jnp.exp(dt[t][:, None] * A) * h + (dt[t] * x[t])[:, None] * B[t][None, :]
    ys.append(h @ C[t] + D * x[t])
  return jnp.stack(ys), h


def random_inputs(length, batch=2, directions=2, channels=3, state=4, seed=0):
  """float64 inputs (batch, directions, length, ...) with one A and D per direction, steps
  from fast-forgetting to slowly-decaying, and a non-zero initial state."""
  rng = np.random.default_rng(seed)
  seq = (batch, directions, length)
  softplus = lambda a: np.log1p(np.exp(a))
  return dict(
      x=rng.normal(size=(*seq, channels)),
      dt=softplus(rng.normal(size=(*seq, channels)) - 1.0),
      A=-np.exp(rng.normal(size=(directions, channels, state))),
      B=rng.normal(size=(*seq, state)),
      C=rng.normal(size=(*seq, state)),
      D=rng.normal(size=(directions, channels)),
      initial_state=rng.normal(size=(batch, directions, channels, state)),
  )


def reference(inputs):
  """`loop_scan` over every (batch, direction): y (b, k, L, d) and the final states."""
  batch, directions = inputs['x'].shape[:2]
  ys, hs = [], []
  for b in range(batch):
    for k in range(directions):
      y, h = loop_scan(
          *(inputs[n][b, k] for n in ('x', 'dt')),
          inputs['A'][k],
          *(inputs[n][b, k] for n in ('B', 'C')),
          inputs['D'][k],
          inputs['initial_state'][b, k],
      )
      ys.append(y)
      hs.append(h)
  shape = lambda a: jnp.stack(a).reshape(batch, directions, *a[0].shape)
  return shape(ys), shape(hs)


def weighted_loss(y, h, seed=1):
  """Weights every output and final-state element differently, so that a gradient sent to
  the wrong step, channel or state element changes the result."""
  rng = np.random.default_rng(seed)
  wy, wh = rng.normal(size=y.shape), rng.normal(size=h.shape)
  return jnp.sum(jnp.sin(y) * wy.astype(y.dtype)) + jnp.sum(jnp.cos(h) * wh.astype(h.dtype))


@functools.lru_cache
def expected(length):
  """float64 values and gradients of the loop on `random_inputs(length)` (computed once for
  both implementations)."""
  inputs = random_inputs(length)
  with jax.enable_x64(True):
    inputs = {k: jnp.asarray(v, jnp.float64) for k, v in inputs.items()}
    y, h = reference(inputs)
    grads = jax.grad(lambda i: weighted_loss(*reference(i)))(inputs)
    return np.asarray(y), np.asarray(h), {k: np.asarray(v) for k, v in grads.items()}


def assert_close(actual, want, name, rtol=2e-5):
  """Within float32 accumulation error, relative to the largest entry of the expected array."""
  np.testing.assert_allclose(actual, want, rtol=0, atol=rtol * np.abs(want).max(), err_msg=name)


# (length, chunk): a padded last chunk, an exact multiple, a chunk longer than the sequence,
# chunks of one step, a last chunk of one step, and a single step.
CHUNKINGS = [(37, 8), (32, 8), (7, 64), (5, 1), (65, 16), (1, 4)]


@pytest.mark.parametrize('length, chunk', CHUNKINGS)
@pytest.mark.parametrize('impl', ['associative', 'sequential'])
def test_scan_values_and_gradients_match_the_float64_loop(impl, length, chunk):
  inputs = random_inputs(length)
  y_want, h_want, grads_want = expected(length)
  f32 = {k: jnp.asarray(v, jnp.float32) for k, v in inputs.items()}
  scan = lambda i: selective_scan(**i, impl=impl, chunk=chunk)
  y, h = jax.jit(scan)(f32)
  assert_close(y, y_want, 'y')
  assert_close(h, h_want, 'final state')
  grads = jax.jit(jax.grad(lambda i: weighted_loss(*scan(i))))(f32)
  assert set(grads) == set(grads_want)
  for name, want in grads_want.items():
    assert_close(grads[name], want, f'd/d{name}', rtol=5e-5)


def raster_orders(height, width):
  """Each direction's visiting order as a list of row-major grid indices, spelled out."""
  rows = [r * width + c for r in range(height) for c in range(width)]
  cols = [r * width + c for c in range(width) for r in range(height)]
  return {'row': rows, 'row_reverse': rows[::-1], 'col': cols, 'col_reverse': cols[::-1]}


def reference_2d(u, dt, A, B, C, D, height, width, directions):
  """SS2D by hand: for each direction, gather the tokens in its order, run the loop, scatter
  the outputs back to where they came from; then the mean over directions. u, dt (b, L, d)
  and B, C (b, k, L, N) in raster order; dt is per token (the same in every direction) and
  B, C are per direction and per *raster position*."""
  orders = raster_orders(height, width)
  out = []
  for b in range(u.shape[0]):
    total = 0.0
    for k, direction in enumerate(directions):
      order = np.asarray(orders[direction])
      y, _ = loop_scan(
          u[b, order],
          dt[b, order],
          A[k],
          B[b, k, order],
          C[b, k, order],
          D[k],
          jnp.zeros_like(A[k]),
      )
      total = total + jnp.zeros_like(y).at[order].set(y)
    out.append(total / len(directions))
  return jnp.stack(out)


@pytest.mark.parametrize('impl', ['associative', 'sequential'])
def test_every_scan_direction_matches_the_hand_spelled_order(impl):
  """A 3 x 5 grid (odd sides, H != W), chunks of 4 (boundaries fall mid-row and mid-column):
  cross_scan -> selective_scan -> cross_merge equals the per-direction loop, with gradients."""
  height, width, directions = 3, 5, VISION_DIRECTIONS
  length, k = height * width, len(directions)
  rng = np.random.default_rng(2)
  softplus = lambda a: np.log1p(np.exp(a))
  inputs = dict(
      u=rng.normal(size=(2, length, 3)),
      dt=softplus(rng.normal(size=(2, length, 3)) - 1.0),
      A=-np.exp(rng.normal(size=(k, 3, 4))),
      B=rng.normal(size=(2, k, length, 4)),
      C=rng.normal(size=(2, k, length, 4)),
      D=rng.normal(size=(k, 3)),
  )

  def model(i):
    scan = lambda a: cross_scan.cross_scan(a, height, width, directions)
    # B and C are given per raster position: read in each direction's order, as dt and u are.
    per_direction = lambda a: jnp.stack(
        [scan(a[:, j])[:, j] for j in range(k)], axis=1
    )  # (b, k, L, N) in each direction's order
    y, _ = selective_scan(
        scan(i['u']),
        scan(i['dt']),
        i['A'],
        per_direction(i['B']),
        per_direction(i['C']),
        i['D'],
        impl=impl,
        chunk=4,
    )
    return cross_scan.cross_merge(y, height, width, directions)

  ref = lambda i: reference_2d(**i, height=height, width=width, directions=directions)
  loss = lambda f: lambda i: weighted_loss(f(i), jnp.zeros((1,), f(i).dtype))
  with jax.enable_x64(True):
    i64 = {n: jnp.asarray(v, jnp.float64) for n, v in inputs.items()}
    want = np.asarray(ref(i64))
    grads_want = {n: np.asarray(g) for n, g in jax.grad(loss(ref))(i64).items()}
  i32 = {n: jnp.asarray(v, jnp.float32) for n, v in inputs.items()}
  assert_close(jax.jit(model)(i32), want, 'merged y')
  grads = jax.jit(jax.grad(loss(model)))(i32)
  for name, g in grads_want.items():
    assert_close(grads[name], g, f'd/d{name}', rtol=5e-5)


@pytest.mark.parametrize('direction', VISION_DIRECTIONS)
def test_each_direction_alone_is_causal_in_its_own_order(direction):
  """With one direction, output at the n-th visited position depends on exactly the positions
  visited before it and itself: the order is the one the name says, and not another."""
  height, width = 3, 5
  order = raster_orders(height, width)[direction]
  n = 6  # an inner step of the order
  rng = np.random.default_rng(3)
  u = jnp.asarray(rng.normal(size=(1, height * width, 2)), jnp.float32)
  ones = jnp.ones((1, 1, height * width, 1))

  def run(u):
    seqs = cross_scan.cross_scan(u, height, width, (direction,))
    y, _ = selective_scan(seqs, 0.5 * jnp.ones_like(seqs), -jnp.ones((1, 2, 1)), ones, ones)
    return cross_scan.cross_merge(y, height, width, (direction,))[0, order[n], 0]

  sensitivity = np.abs(np.asarray(jax.grad(run)(u))[0, :, 0])
  visited_before = set(order[: n + 1])
  for position in range(height * width):
    assert (sensitivity[position] > 0) == (position in visited_before), position
