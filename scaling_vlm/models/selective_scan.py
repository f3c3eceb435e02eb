"""The selective scan of Mamba-1 (S6), computed in float32 whatever the compute dtype.

For every inner channel d and state index n, with an input-dependent step Δ_t > 0, input
matrix B_t and output matrix C_t (all from the token at t) and a learned A < 0:

    h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t x_t) B_t       (zero-order hold for A, Euler for B,
    y_t = C_t · h_t + D x_t                            as Mamba's reference implementation)

`selective_scan` cuts the sequence into chunks of `chunk` steps and carries the state from
chunk to chunk with `lax.scan`, so only batch × chunk × channels × state values are alive at
once, not × length. Inside a chunk the linear recurrence runs either as a
`jax.lax.associative_scan` (`associative`: log-depth, for accelerators) or step by step
(`sequential`: cache-friendly, several times faster on CPUs); `auto` picks by backend. Each chunk has a hand-written
backward pass, as Mamba's CUDA kernel does: it keeps only the chunk's inputs and its first
state, recomputes the chunk's states, and runs the adjoint recurrence backwards through the
chunk (the same linear recurrence, reversed); differentiating through the scan instead would
store every state and cost an order of magnitude more.

`reference_scan` is the plain step-by-step `lax.scan`, differentiated by JAX: the reference
the tests hold both implementations (values and gradients) to.

Everything accumulates in float32: a bfloat16 state would lose the slowly decaying memory
that the recurrence exists for.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from scaling_vlm.models.config import SCAN_IMPLS

Array = jax.Array


def selective_scan(
    x: Array,
    dt: Array,
    A: Array,
    B: Array,
    C: Array,
    D: Array | None = None,
    *,
    impl: str = 'auto',
    chunk: int = 64,
    initial_state: Array | None = None,
) -> tuple[Array, Array]:
  """Runs the S6 recurrence along the second-to-last axis.

  x, dt: (..., L, d) inputs and their (positive) steps; A: (..., d, N), broadcast against the
  leading axes of x (one A per scan direction, say); B, C: (..., L, N); D: (..., d) or None;
  initial_state: (..., d, N) or None for zeros. Returns y (..., L, d) in x's dtype and the
  final state (..., d, N) in float32.
  """
  if impl not in SCAN_IMPLS:
    raise ValueError(f'scan impl {impl!r} is not allowed; choose one of {list(SCAN_IMPLS)}.')
  if chunk < 1:
    raise ValueError(f'chunk={chunk} must be >= 1.')
  if impl == 'auto':
    impl = 'sequential' if jax.default_backend() == 'cpu' else 'associative'
  A, h0, inputs = _prepare(x, dt, A, B, C, initial_state)
  length = x.shape[-2]
  chunk = min(chunk, length)
  chunks = -(-length // chunk)
  # Padding steps have Δ = 0: decay exp(0) = 1 and no drive, so they leave the state alone.
  pad = chunks * chunk - length

  def split(a):  # (..., L, f) -> (chunks, ..., chunk, f)
    a = jnp.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, pad), (0, 0)])
    return jnp.moveaxis(a.reshape(*a.shape[:-2], chunks, chunk, a.shape[-1]), -3, 0)

  step = lambda h, xs: _chunk(impl, A, h, *xs)
  h, y = jax.lax.scan(step, h0, tuple(split(a) for a in inputs))
  y = jnp.moveaxis(y, 0, -3)
  y = y.reshape(*y.shape[:-3], chunks * chunk, y.shape[-1])[..., :length, :]
  return _finish(y, inputs[0], D, x.dtype), h


def reference_scan(
    x: Array,
    dt: Array,
    A: Array,
    B: Array,
    C: Array,
    D: Array | None = None,
    *,
    initial_state: Array | None = None,
) -> tuple[Array, Array]:
  """`selective_scan` one step at a time, differentiated by JAX: the tests' reference."""
  A, h0, inputs = _prepare(x, dt, A, B, C, initial_state)

  def step(h, token):
    x, dt, B, C = token  # (..., d), (..., d), (..., N), (..., N)
    h = jnp.exp(dt[..., None] * A) * h + (dt * x)[..., None] * B[..., None, :]
    return h, jnp.einsum('...dn,...n->...d', h, C, precision=jax.lax.Precision.HIGHEST)

  h, y = jax.lax.scan(step, h0, tuple(jnp.moveaxis(a, -2, 0) for a in inputs))
  return _finish(jnp.moveaxis(y, 0, -2), inputs[0], D, x.dtype), h


def _prepare(x, dt, A, B, C, initial_state):
  """float32 inputs and the initial state, broadcast to the state's full shape."""
  if x.shape != dt.shape or B.shape != C.shape or B.shape[:-1] != x.shape[:-1]:
    raise ValueError(
        f'selective_scan: x {x.shape} and dt {dt.shape} must match, and B {B.shape} and C '
        f'{C.shape} must be (..., L, N) over the same (..., L).'
    )
  f32 = lambda a: a.astype(jnp.float32)
  state_shape = jnp.broadcast_shapes((*x.shape[:-2], x.shape[-1], A.shape[-1]), A.shape)
  h0 = jnp.zeros(state_shape, jnp.float32)
  if initial_state is not None:
    h0 = jnp.broadcast_to(f32(initial_state), state_shape)
  return f32(A), h0, (f32(x), f32(dt), f32(B), f32(C))


def _finish(y: Array, x: Array, D: Array | None, dtype) -> Array:
  if D is not None:
    y = y + x * D.astype(jnp.float32)[..., None, :]
  return y.astype(dtype)


def _combine(earlier, later):
  """Composes h -> a1 h + b1 followed by h -> a2 h + b2: an associative operator."""
  a1, b1 = earlier
  a2, b2 = later
  return a1 * a2, a2 * b1 + b2


def _readout(states: Array, C: Array) -> Array:
  """y = C · h over the state axis. A fused multiply-and-sum, not a dot: the contraction is
  only N long, and this keeps it exact float32 on every backend."""
  return jnp.sum(states * C[..., None, :], axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _chunk(impl: str, A: Array, h0: Array, x: Array, dt: Array, B: Array, C: Array):
  """One chunk: (state after it, outputs y (..., T, d)) from the state h0 before it."""
  if impl == 'sequential':
    return _sequential_forward(A, h0, x, dt, B, C)
  states, _ = _associative_states(A, h0, x, dt, B)
  return states[..., -1, :, :], _readout(states, C)


def _chunk_fwd(impl, A, h0, x, dt, B, C):
  return _chunk(impl, A, h0, x, dt, B, C), (A, h0, x, dt, B, C)  # no states kept


def _chunk_bwd(impl, residuals, cotangents):
  """Gradients through one chunk. The adjoint λ_t = dL/dh_t obeys the reversed recurrence
  λ_t = decay_{t+1} ⊙ λ_{t+1} + g_y_t C_t from λ_T = g_last + g_y_T C_T; from it
  dL/d(Δ_t A) = λ_t ⊙ h_{t-1} ⊙ decay_t and dL/d(Δ_t x_t B_t) = λ_t."""
  A, h0, x, dt, B, C = residuals
  g_last, g_y = cotangents
  backward = _sequential_backward if impl == 'sequential' else _associative_backward
  g_A, g_h0, g_x, g_dt, g_B, g_C = backward(A, h0, x, dt, B, C, g_last, g_y)
  return _sum_to(g_A, A.shape), g_h0, g_x, g_dt, g_B, g_C


_chunk.defvjp(_chunk_fwd, _chunk_bwd)


# Associative: whole-chunk arrays (..., T, d, N), log-depth in T.


def _associative_states(A, h0, x, dt, B):
  decay = jnp.exp(dt[..., None] * A[..., None, :, :])  # (..., T, d, N)
  drive = (dt * x)[..., None] * B[..., None, :]
  return _associative(decay, drive, h0, reverse=False), decay


def _associative(decay: Array, drive: Array, h0: Array, reverse: bool) -> Array:
  """All states of h_t = decay_t ⊙ h_{t∓1} + drive_t along axis -3 (time), from h0."""
  # A non-negative axis: associative_scan's `reverse` rejects negative ones.
  time = decay.ndim - 3
  decay, drive = jax.lax.associative_scan(_combine, (decay, drive), reverse=reverse, axis=time)
  return decay * h0[..., None, :, :] + drive


def _associative_backward(A, h0, x, dt, B, C, g_last, g_y):
  states, decay = _associative_states(A, h0, x, dt, B)
  before = jnp.concatenate([h0[..., None, :, :], states[..., :-1, :, :]], axis=-3)
  next_decay = jnp.concatenate([decay[..., 1:, :, :], jnp.ones_like(decay[..., :1, :, :])], -3)
  adjoint = _associative(next_decay, g_y[..., None] * C[..., None, :], g_last, reverse=True)
  through_decay = adjoint * before * decay
  through_drive = jnp.sum(adjoint * B[..., None, :], axis=-1)  # dL/d(Δ x)
  return (
      jnp.sum(through_decay * dt[..., None], axis=-3),  # g_A, before summing over the batch
      decay[..., 0, :, :] * adjoint[..., 0, :, :],  # g_h0
      through_drive * dt,  # g_x
      through_drive * x + jnp.sum(through_decay * A[..., None, :, :], axis=-1),  # g_dt
      jnp.sum(adjoint * (dt * x)[..., None], axis=-2),  # g_B
      jnp.sum(states * g_y[..., None], axis=-2),  # g_C
  )


# Sequential: one step at a time, the (d, N) state of each step computed and used in place.


def _time_first(*arrays: Array) -> tuple[Array, ...]:
  return tuple(jnp.moveaxis(a, -2, 0) for a in arrays)


def _sequential_forward(A, h0, x, dt, B, C):
  def step(h, token):
    x, dt, B, C = token  # (..., d), (..., d), (..., N), (..., N)
    h = jnp.exp(dt[..., None] * A) * h + (dt * x)[..., None] * B[..., None, :]
    return h, jnp.sum(h * C[..., None, :], axis=-1)

  h, y = jax.lax.scan(step, h0, _time_first(x, dt, B, C))
  return h, jnp.moveaxis(y, 0, -2)


def _sequential_backward(A, h0, x, dt, B, C, g_last, g_y):
  def forward(h, token):
    x, dt, B = token
    h = jnp.exp(dt[..., None] * A) * h + (dt * x)[..., None] * B[..., None, :]
    return h, h

  tokens = _time_first(x, dt, B, C, g_y)
  _, states = jax.lax.scan(forward, h0, tokens[:3])
  before = jnp.concatenate([h0[None], states[:-1]])

  def backward(carry, token):
    decayed, g_A = carry  # decay_{t+1} ⊙ λ_{t+1}, and dL/dA so far
    x, dt, B, C, g_y, h, h_before = token
    decay = jnp.exp(dt[..., None] * A)
    adjoint = decayed + g_y[..., None] * C[..., None, :]
    through_decay = adjoint * h_before * decay
    through_drive = jnp.sum(adjoint * B[..., None, :], axis=-1)
    grads = (
        through_drive * dt,  # g_x
        through_drive * x + jnp.sum(through_decay * A, axis=-1),  # g_dt
        jnp.sum(adjoint * (dt * x)[..., None], axis=-2),  # g_B
        jnp.sum(h * g_y[..., None], axis=-2),  # g_C
    )
    return (decay * adjoint, g_A + through_decay * dt[..., None]), grads

  zero = jnp.zeros(jnp.broadcast_shapes(h0.shape, A.shape), jnp.float32)
  (g_h0, g_A), grads = jax.lax.scan(
      backward, (g_last, zero), (*tokens, states, before), reverse=True
  )
  return (g_A, g_h0, *(jnp.moveaxis(g, 0, -2) for g in grads))


def _sum_to(g: Array, shape: tuple[int, ...]) -> Array:
  """The gradient of a value broadcast from `shape` to g.shape: summed back to `shape`."""
  g = g.sum(axis=tuple(range(g.ndim - len(shape))))
  axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1)
  return g.sum(axis=axes, keepdims=True)
