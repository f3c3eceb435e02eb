"""Tests for scaling_vlm.models.generate: cached decoding against uncached references (CPU)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_vlm import models
from scaling_vlm.models import TextConfig, generate
from scaling_vlm.models.mammut import MaMMUT

# A vocabulary small enough that EOT is often the argmax and every continuation can be listed.
SMALL_VOCAB = {'text.vocab_size': 8}


def _model(name: str, seed: int, scale: float, **overrides) -> MaMMUT:
  """A MaMMUT with every parameter perturbed by N(0, scale^2) noise. At init the LM head is
  zero and the decoder barely reads the image; the noise makes the logits depend on both.
  The noise is drawn by NumPy: jax.random would compile once per parameter shape."""
  model = models.build(name, **overrides)
  rng = np.random.default_rng(seed)
  params = nnx.state(model, nnx.Param)
  nnx.update(model, jax.tree.map(lambda x: x + scale * rng.normal(size=x.shape), params))
  return model


def _images(n: int, seed: int = 0) -> np.ndarray:
  """Images with their own colour and contrast, so that their captions differ."""
  rng = np.random.default_rng(seed)
  colour, contrast = rng.normal(size=(n, 1, 1, 3)), rng.uniform(0.2, 2.0, size=(n, 1, 1, 1))
  return (colour + contrast * rng.normal(size=(n, 64, 64, 3))).astype(np.float32)


@pytest.fixture(scope='module')
def small() -> MaMMUT:
  """Seed and scale chosen so that on `_images(5)` the five greedy captions all differ, three
  end (EOT at positions 5, 8 and 23 of 32) and two never do."""
  return _model('mammut_tiny-1', seed=11, scale=0.3, **SMALL_VOCAB)


@nnx.jit
def _context(model: MaMMUT, images: np.ndarray) -> jax.Array:
  return model.image_context(model.visual(images)[1])


@nnx.jit
def _caption_logits(model: MaMMUT, tokens: jax.Array, context: jax.Array) -> jax.Array:
  return model.decoder.caption_logits(tokens, context)


def _reference_greedy(model: MaMMUT, images: np.ndarray, max_length: int) -> np.ndarray:
  """Greedy decoding without a cache: the full causal forward over the prefix each step. The
  prefix sits in a fixed pad-filled buffer so that it compiles once; were anything after
  position i to leak into its logits, the pads would make this disagree with the cache."""
  text = model.config.text
  context = _context(model, images)
  tokens = np.full((len(images), max_length), text.pad_id, np.int32)
  tokens[:, 0] = text.sot_id
  finished = np.zeros(len(images), bool)
  for i in range(max_length - 1):
    logits = _caption_logits(model, jnp.asarray(tokens), context)[:, i]
    tokens[:, i + 1] = np.where(finished, text.pad_id, np.argmax(logits, axis=-1))
    finished |= tokens[:, i + 1] == text.eot_id
  return tokens


def _counted(text: TextConfig, tokens: np.ndarray) -> np.ndarray:
  """Which tokens after SOT a caption's score counts: those up to and including the first
  EOT (all of them when there is none)."""
  is_eot = tokens[:, 1:] == text.eot_id
  return np.cumsum(is_eot, axis=1) - is_eot == 0


def _log_prob(model: MaMMUT, context: jax.Array, tokens: np.ndarray) -> np.ndarray:
  """Summed log-probs of each row's counted tokens, from the uncached forward."""
  logits = _caption_logits(model, jnp.asarray(tokens[:, :-1]), context)
  log_probs = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32)))
  chosen = np.take_along_axis(log_probs, tokens[:, 1:, None], axis=-1)[..., 0]
  return np.where(_counted(model.config.text, tokens), chosen, 0.0).sum(axis=1)


def _check_greedy(model: MaMMUT, max_length: int | None) -> np.ndarray:
  """Greedy with the cache equals the uncached reference, token for token."""
  images = _images(5)
  tokens = np.asarray(generate.greedy(model, images, max_length=max_length))
  length = max_length or model.config.text.context_length
  assert tokens.shape == (5, length) and tokens.dtype == np.int32
  np.testing.assert_array_equal(tokens, _reference_greedy(model, images, length))
  return tokens


def test_greedy_matches_uncached_argmax(small):
  """Catches cache bugs (wrong position, stale keys), an off-by-one between fed and predicted
  positions, a wrong EOT/pad rule and a wrong default length."""
  tokens = _check_greedy(small, max_length=None)
  # The EOT/pad rule is only exercised if some rows end early and others run to the end.
  ended = (tokens[:, 1:-1] == small.config.text.eot_id).any(axis=1)
  assert ended.any() and not ended.all(), tokens


def test_greedy_matches_uncached_argmax_scanned():
  """The same with a 1024-word vocabulary and two scanned decoder units, whose caches are
  stacked along axis 0."""
  model = _model('mammut_tiny-1', seed=1, scale=0.2, scan_layers=True, **{'text.layers': 4})
  tokens = _check_greedy(model, max_length=12)
  assert len({tuple(row) for row in tokens}) > 1, tokens  # the captions read the image


def test_beam_of_one_is_greedy(small):
  """A one-beam search must follow greedy (finished rows included) and score it as the
  uncached forward does."""
  images = _images(5)
  greedy = np.asarray(generate.greedy(small, images))
  tokens, scores = generate.beam_search(small, images, beam_size=1)
  np.testing.assert_array_equal(tokens, greedy)
  expected = _log_prob(small, _context(small, images), greedy)
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-4)


def _all_captions(text: TextConfig, generated: int) -> np.ndarray:
  """Every distinct caption of `generated` tokens after SOT: cut after the first EOT and
  padded, as decoding writes them."""
  captions = set()
  for tail in itertools.product(range(text.vocab_size), repeat=generated):
    tail = list(tail)
    if text.eot_id in tail:
      end = tail.index(text.eot_id) + 1
      tail = tail[:end] + [text.pad_id] * (generated - end)
    captions.add((text.sot_id, *tail))
  return np.array(sorted(captions), np.int32)


@pytest.mark.parametrize('length_penalty', [0.0, 1.0])
def test_wide_beam_is_exact(small, length_penalty):
  """With room for every length-2 prefix (8 x 8 = 64), the search prunes nothing before the
  last step, so it must return the best of all captions. Catches k copies of one token at
  step 0, wrong parent or cache reordering, and wrong lengths or scores."""
  max_length, images = 4, _images(3)
  captions = _all_captions(small.config.text, max_length - 1)
  tokens, scores = generate.beam_search(
      small, images, beam_size=64, max_length=max_length, length_penalty=length_penalty
  )
  lengths = _counted(small.config.text, captions).sum(axis=1)
  for i, context in enumerate(_context(small, images)):
    batch_context = jnp.broadcast_to(context, (len(captions), *context.shape))
    all_scores = _log_prob(small, batch_context, captions) / lengths**length_penalty
    best = np.argmax(all_scores)
    np.testing.assert_array_equal(tokens[i], captions[best])
    np.testing.assert_allclose(scores[i], all_scores[best], atol=1e-4)


Hypothesis = tuple[tuple[int, ...], float, int, bool]  # tokens, log-prob, length, finished


def _reference_beam(
    model: MaMMUT, images: np.ndarray, beam_size: int, max_length: int, length_penalty: float
) -> tuple[np.ndarray, np.ndarray]:
  """Beam search written plainly: lists of hypotheses, each step scored by the uncached
  forward, ranked by log-prob / length ** length_penalty; a finished hypothesis is carried
  over once, unchanged. One fixed-size buffer of prefixes keeps it to one compilation."""
  text = model.config.text
  context = _context(model, images)

  def rank(hypothesis: Hypothesis) -> float:
    _, log_prob, length, _ = hypothesis
    return log_prob / length**length_penalty

  beams: list[list[Hypothesis]] = [[((text.sot_id,), 0.0, 0, False)] for _ in images]
  for i in range(max_length - 1):
    rows = [(b, h) for b, hypotheses in enumerate(beams) for h in hypotheses]
    buffer = np.full((len(images) * beam_size, max_length), text.pad_id, np.int32)
    image = np.zeros(len(buffer), np.int32)
    for r, (b, (tokens, *_)) in enumerate(rows):
      buffer[r, : len(tokens)], image[r] = tokens, b
    logits = _caption_logits(model, jnp.asarray(buffer), context[image])[:, i]
    log_probs = np.asarray(jax.nn.log_softmax(logits))
    candidates: list[list[Hypothesis]] = [[] for _ in images]
    for r, (b, (tokens, log_prob, length, finished)) in enumerate(rows):
      if finished:
        candidates[b].append((tokens + (text.pad_id,), log_prob, length, True))
        continue
      for v in range(text.vocab_size):
        hypothesis = (tokens + (v,), log_prob + log_probs[r, v], length + 1, v == text.eot_id)
        candidates[b].append(hypothesis)
    beams = [sorted(c, key=rank, reverse=True)[:beam_size] for c in candidates]
  best = [max(hypotheses, key=rank) for hypotheses in beams]
  return np.array([h[0] for h in best], np.int32), np.array([rank(h) for h in best])


@pytest.mark.parametrize('length_penalty', [0.0, 1.0])
def test_beam_matches_reference(small, length_penalty):
  """A narrow beam over full-length captions, where pruning matters, against
  `_reference_beam`. With the length penalty, a finished beam duplicated into several slots
  crowds out a live one that would have overtaken it (images 0 and 1 here); without a penalty
  nothing below a finished beam ever can, so that bug would go unseen."""
  images = _images(5)
  tokens, scores = generate.beam_search(small, images, beam_size=3, length_penalty=length_penalty)
  context_length = small.config.text.context_length
  expected = _reference_beam(small, images, 3, context_length, length_penalty)
  np.testing.assert_array_equal(tokens, expected[0])
  np.testing.assert_allclose(scores, expected[1], atol=1e-4)


@pytest.mark.parametrize('search', ['greedy', 'beam'])
def test_rows_are_independent(small, search):
  """Each image's caption must not depend on the rest of the batch (e.g. beams of one image
  reordered into another's rows)."""
  images = _images(5)

  def caption(batch):
    if search == 'greedy':
      return np.asarray(generate.greedy(small, batch)), None
    tokens, scores = generate.beam_search(small, batch, beam_size=3)
    return np.asarray(tokens), np.asarray(scores)

  tokens, scores = caption(images)
  for i in range(len(images)):
    alone_tokens, alone_scores = caption(images[i : i + 1])
    np.testing.assert_array_equal(alone_tokens[0], tokens[i])
    if scores is not None:
      np.testing.assert_allclose(alone_scores[0], scores[i], rtol=1e-5)


@pytest.mark.parametrize('max_length', [0, 1, 33])
def test_bad_max_length(small, max_length):
  with pytest.raises(ValueError, match=rf'max_length={max_length}.*2\.\.32'):
    generate.greedy(small, _images(1), max_length=max_length)
  with pytest.raises(ValueError, match=rf'max_length={max_length}'):
    generate.beam_search(small, _images(1), max_length=max_length)


def test_bad_beam_size(small):
  with pytest.raises(ValueError, match='beam_size must be >= 1, got 0'):
    generate.beam_search(small, _images(1), beam_size=0)


def test_needs_mammut():
  with pytest.raises(TypeError, match='MaMMUT'):
    generate.greedy(models.build('tiny-1'), _images(1))
