"""Caption generation with MaMMUT's KV cache: greedy decoding and beam search.

Each public function validates its arguments in Python, then runs one `nnx.jit` function in
which the whole decoding loop is a while loop, so a caption costs one dispatch rather than
one per token. The loop is `nnx.while_loop` (a `jax.lax.while_loop` that carries the decoder
module in its state) because scanned decoder units run `nnx.scan`, which refuses a module
closed over from an outer trace. `max_length` and `beam_size` fix array shapes and are
static; `length_penalty` is traced. So each model, image shape, max_length and beam_size
compiles once. The loops stop early once every row (or beam) has finished.

Sequences start with SOT at position 0; position `i + 1` is chosen from the logits of
`decode_step` at position `i`, so the cache needs `max_length - 1` positions. Once a row
emits EOT the rest of it is pad (0).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_vlm.models.mammut import MaMMUT

Cache = dict  # the decoder's pytree of stacked keys and values, batch at axis 1


def greedy(model: MaMMUT, images: jax.Array, *, max_length: int | None = None) -> jax.Array:
  """(B, max_length) int32 captions: SOT, then the most likely token at each step; after
  EOT a row is pad. `max_length` defaults to the context length."""
  return _greedy(model, images, _caption_length(model, max_length))


def beam_search(
    model: MaMMUT,
    images: jax.Array,
    *,
    beam_size: int = 4,
    max_length: int | None = None,
    length_penalty: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
  """The best of `beam_size` beams per image: tokens (B, max_length) int32 and scores (B,).

  A score is the sum of token log-probs up to and including EOT (or to `max_length` for a
  sequence that never ends), divided by `generated_length ** length_penalty`; 0.0 keeps the
  plain sum. Candidates are ranked by this score at every step, so a finished beam competes
  with its final score and live beams (all of the same length) by their sums so far.
  """
  if beam_size < 1:
    raise ValueError(f'beam_size must be >= 1, got {beam_size}.')
  max_length = _caption_length(model, max_length)
  return _beam_search(model, images, beam_size, max_length, jnp.float32(length_penalty))


def _caption_length(model: MaMMUT, max_length: int | None) -> int:
  """The caption length to generate, checked against the model's positional table."""
  if not isinstance(model, MaMMUT):
    raise TypeError(f'Caption generation needs a MaMMUT, got {type(model).__name__}.')
  context_length = model.config.text.context_length
  if max_length is None:
    return context_length
  # SOT plus at least one generated token; positions beyond the table have no embedding.
  if not 2 <= max_length <= context_length:
    raise ValueError(
        f'max_length={max_length} is out of range; this model allows 2..{context_length}.'
    )
  return max_length


def _image_cache(model: MaMMUT, images: jax.Array, length: int) -> Cache:
  """The decoder cache for `length` positions, holding the images' cross-attention keys."""
  _, image_tokens = model.visual(images)
  return model.decoder.init_cache(model.image_context(image_tokens), length)


def _take_rows(cache: Cache, rows: jax.Array) -> Cache:
  """Cache rows `rows` (axis 0 of every leaf is the stacked layer axis, axis 1 the batch)."""
  return jax.tree.map(lambda a: jnp.take(a, rows, axis=1), cache)


def _start_tokens(model: MaMMUT, shape: tuple[int, ...]) -> jax.Array:
  """Pad everywhere but SOT at position 0 of the last axis."""
  text = model.config.text
  return jnp.full(shape, text.pad_id, jnp.int32).at[..., 0].set(text.sot_id)


@functools.partial(nnx.jit, static_argnames='max_length')
def _greedy(model: MaMMUT, images: jax.Array, max_length: int) -> jax.Array:
  text = model.config.text
  tokens = _start_tokens(model, (images.shape[0], max_length))
  finished = jnp.zeros(images.shape[0], bool)

  def not_done(state):
    _, i, _, finished, _ = state
    return (i < max_length - 1) & ~finished.all()

  def step(state):
    decoder, i, tokens, finished, cache = state
    logits, cache = decoder.decode_step(tokens[:, i], i, cache)
    token = jnp.where(finished, text.pad_id, jnp.argmax(logits, axis=-1).astype(jnp.int32))
    tokens = tokens.at[:, i + 1].set(token)
    return decoder, i + 1, tokens, finished | (token == text.eot_id), cache

  cache = _image_cache(model, images, max_length - 1)
  state = (model.decoder, jnp.int32(0), tokens, finished, cache)
  return nnx.while_loop(not_done, step, state)[2]


def _normalise(scores: jax.Array, lengths: jax.Array, length_penalty: jax.Array) -> jax.Array:
  """Summed log-probs divided by generated_length ** length_penalty."""
  return scores / lengths.astype(jnp.float32) ** length_penalty


@functools.partial(nnx.jit, static_argnames=('beam_size', 'max_length'))
def _beam_search(
    model: MaMMUT,
    images: jax.Array,
    beam_size: int,
    max_length: int,
    length_penalty: jax.Array,
) -> tuple[jax.Array, jax.Array]:
  text = model.config.text
  batch, k, vocab = images.shape[0], beam_size, text.vocab_size
  # Beam j of image b is decoder row b * k + j; every beam starts from its image's cache.
  cache = _take_rows(_image_cache(model, images, max_length - 1), jnp.arange(batch * k) // k)
  tokens = _start_tokens(model, (batch, k, max_length))
  # Only beam 0 is live at first; the others would otherwise pick k copies of the same token.
  scores = jnp.full((batch, k), -jnp.inf).at[:, 0].set(0.0)
  lengths = jnp.zeros((batch, k), jnp.int32)  # generated tokens, EOT included
  finished = jnp.zeros((batch, k), bool)
  # A finished beam's only continuation is pad at no cost, so it survives unchanged, once.
  pad_only = jnp.full((vocab,), -jnp.inf).at[text.pad_id].set(0.0)

  def not_done(state):
    _, i, _, scores, _, finished, _ = state
    # A -inf beam can never become a candidate again, so it counts as done.
    return (i < max_length - 1) & ~(finished | jnp.isneginf(scores)).all()

  def step(state):
    decoder, i, tokens, scores, lengths, finished, cache = state
    logits, cache = decoder.decode_step(tokens[:, :, i].reshape(-1), i, cache)
    log_probs = jax.nn.log_softmax(logits).reshape(batch, k, vocab)
    totals = scores[..., None] + jnp.where(finished[..., None], pad_only, log_probs)
    grown = jnp.broadcast_to((lengths + ~finished)[..., None], totals.shape)
    rank = _normalise(totals, grown, length_penalty).reshape(batch, k * vocab)
    _, choice = jax.lax.top_k(rank, k)
    parent, token = choice // vocab, (choice % vocab).astype(jnp.int32)

    def pick(a):  # per-beam values of the chosen (parent, token) candidates
      return jnp.take_along_axis(a.reshape(batch, k * vocab), choice, axis=1)

    tokens = jnp.take_along_axis(tokens, parent[..., None], axis=1).at[:, :, i + 1].set(token)
    finished = jnp.take_along_axis(finished, parent, axis=1) | (token == text.eot_id)
    cache = _take_rows(cache, (jnp.arange(batch)[:, None] * k + parent).reshape(-1))
    return decoder, i + 1, tokens, pick(totals), pick(grown), finished, cache

  state = (model.decoder, jnp.int32(0), tokens, scores, lengths, finished, cache)
  _, _, tokens, scores, lengths, _, _ = nnx.while_loop(not_done, step, state)
  final = _normalise(scores, lengths, length_penalty)
  best = jnp.argmax(final, axis=1)
  rows = jnp.arange(batch)
  return tokens[rows, best], final[rows, best]
