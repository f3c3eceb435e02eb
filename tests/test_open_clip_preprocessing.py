"""Our evaluation pixels and CLIP token ids against open_clip's.

CI has no torch: the fixtures hold what open_clip, torchvision and Pillow made of the same
inputs (written by tests/fixtures/make_preprocessing_fixtures.py, whose docstring says how to
rerun it). Pixels must be equal exactly, as uint8 before normalisation; normalised, they must be
within 1e-6 of open_clip's floats. Where torch and open_clip import, the live tests repeat the
checks against the libraries themselves.
"""

import hashlib
import importlib.util
import io
import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from scaling_vlm.data import pipeline, transforms
from scaling_vlm.data.tokenizers import ClipTokenizer
from scaling_vlm.evaluate.embeddings import eval_image

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
BPE = FIXTURES / 'bpe_simple_vocab_16e6.txt.gz'


@pytest.fixture(scope='module')
def recorded():
  with np.load(FIXTURES / 'open_clip_preprocessing.npz') as arrays:
    return dict(arrays)


@pytest.fixture(scope='module')
def clip():
  return ClipTokenizer(BPE, context_length=77)


def images(recorded) -> list[np.ndarray | bytes]:
  """The recorded inputs: uint8 arrays, then encoded JPEG and PNG bytes."""
  arrays = [recorded[f'input_{i}'] for i in range(int(recorded['num_arrays']))]
  encoded = sorted((k for k in recorded if k.startswith('encoded_')), key=lambda k: int(k[8:]))
  return arrays + [recorded[k].tobytes() for k in encoded]


def describe(image) -> str:
  return f'{image.shape} array' if isinstance(image, np.ndarray) else f'{len(image)}-byte file'


@pytest.mark.parametrize('size', [224, 64])
def test_eval_pixels_equal_open_clip(recorded, size):
  for i, image in enumerate(images(recorded)):
    ours = transforms.eval_transform(image, size)
    assert ours.shape == (size, size, 3) and ours.dtype == np.uint8
    expected = recorded[f'pixels_{size}_{i}']
    if size == 224:  # recorded as every 4th row and column, and a digest of the whole
      sample = ours[:: 224 // expected.shape[0], :: 224 // expected.shape[1]]
      np.testing.assert_array_equal(sample, expected, err_msg=f'image {i}: {describe(image)}')
      assert hashlib.sha256(ours).digest() == recorded[f'sha256_{size}_{i}'].tobytes(), i
    else:
      np.testing.assert_array_equal(ours, expected, err_msg=f'image {i}: {describe(image)}')


def test_normalised_pixels_match_open_clip_floats(recorded):
  inputs = images(recorded)
  for key in (k for k in recorded if k.startswith('output_64_')):
    pixels = transforms.eval_transform(inputs[int(key.split('_')[-1])], 64)
    ours = np.asarray(transforms.normalize(jnp.asarray(pixels))).transpose(2, 0, 1)
    np.testing.assert_allclose(ours, recorded[key], rtol=0, atol=1e-6, err_msg=key)


def test_evaluation_callers_use_the_open_clip_transform(recorded):
  jpeg = images(recorded)[int(recorded['num_arrays'])]
  expected = recorded['pixels_64_' + str(int(recorded['num_arrays']))]
  np.testing.assert_array_equal(eval_image({'key': 'k', 'image': jpeg}, 64), expected)
  record = {'image': jpeg, 'caption': 'a photo'}
  out = pipeline.preprocess(
      record, None, image_size=64, tokenizer=lambda text: np.zeros((1, 4)), train=False
  )
  np.testing.assert_array_equal(out['images'], expected)


def test_image_already_at_size_is_unchanged():
  # The fast path skips Pillow: torchvision's Resize and CenterCrop return such an image as is
  # (the recorded 224x224 at 224 and 64x64 at 64 check the same against open_clip).
  pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
  np.testing.assert_array_equal(transforms.eval_transform(pixels, 64), pixels)
  np.testing.assert_array_equal(transforms.eval_transform(pixels[:, ::-1], 64), pixels[:, ::-1])


def test_clip_tokens_equal_open_clip(recorded, clip):
  texts = json.loads(recorded['texts_json'].tobytes())
  ours = clip(texts)
  for text, row, theirs, defused, special in zip(
      texts, ours, recorded['tokens'], recorded['tokens_defused'], recorded['has_special']
  ):
    if special:  # the documented difference: the literal is text here, a special id there
      assert (row != theirs).any(), text
      theirs = defused  # open_clip's ids once the literal is no longer special
    np.testing.assert_array_equal(row, theirs, err_msg=repr(text))
  assert recorded['has_special'].any()  # the fixture does exercise the difference


def live_open_clip():
  """open_clip and the fixture script (which imports it), or a skip."""
  pytest.importorskip('torch')
  pytest.importorskip('open_clip')
  path = FIXTURES / 'make_preprocessing_fixtures.py'
  spec = importlib.util.spec_from_file_location('make_preprocessing_fixtures', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_live_eval_pixels_equal_open_clip():
  make = live_open_clip()
  rng = np.random.default_rng(0)
  shapes = [tuple(int(s) for s in rng.integers(20, 400, 2)) for _ in range(10)]
  for seed, (height, width) in enumerate(shapes):
    pixels = make.detailed_photo(height, width, seed)
    jpeg = make.encode(pixels, 'jpeg')
    for size in (224, 64, 97):
      expected, _ = make.open_clip_pixels(Image.fromarray(pixels), size)
      np.testing.assert_array_equal(transforms.eval_transform(pixels, size), expected)
      expected, _ = make.open_clip_pixels(Image.open(io.BytesIO(jpeg)).convert('RGB'), size)
      np.testing.assert_array_equal(transforms.eval_transform(jpeg, size), expected)


def test_live_clip_tokens_equal_open_clip(clip):
  make = live_open_clip()
  import open_clip  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(0)
  # Random code points from every plane, some between spaces: what no hand-picked list covers.
  points = np.concatenate([rng.integers(0, 0x3000, 4000), rng.integers(0, 0x110000, 2000)])
  chars = [chr(p) for p in points if not 0xD800 <= p < 0xE000]
  texts = [''.join(chars[i : i + 12]) for i in range(0, len(chars), 12)]
  texts += [' '.join(chars[i : i + 12]) for i in range(0, len(chars), 12)]
  texts += make.TEXTS
  # open_clip reads a literal '<start_of_text>' as the special id, we as text (see ClipTokenizer).
  expected = [make.defuse(t) if make.has_special(t) else t for t in texts]
  np.testing.assert_array_equal(clip(texts), open_clip.tokenize(expected, 77).numpy())
