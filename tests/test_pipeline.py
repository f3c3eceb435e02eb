"""The grain pipeline: determinism, exact resume, per-host sharding, formats, bad records."""

import io

import jax
import numpy as np
import pytest
from PIL import Image

from scaling_vlm import sharding
from scaling_vlm.data import pipeline, synthetic, tokenizers, transforms
from scaling_vlm.data.arrayrecord import ArrayRecordSource
from scaling_vlm.data.wds import WdsSource, write_wds
from scaling_vlm.data.write import write_shards

TOKENIZER = tokenizers.WordTokenizer(synthetic.VOCABULARY, 32)


class Numbered:
  """A tiny source: record i has key str(i) and an image that encodes i."""

  def __init__(self, size: int):
    self.size = size

  def __len__(self):
    return self.size

  def __getitem__(self, i):
    image = np.full((40, 48, 3), i % 256, np.uint8)
    return {
        'key': str(i),
        'shard': 'numbered',
        'image': image,
        'caption': 'a red circle .',
        'error': None,
    }


def batches(source, n, **kwargs):
  options = dict(tokenizer=TOKENIZER, image_size=32, global_batch=8, seed=0) | kwargs
  it = pipeline.host_batches(source, **options)
  return it, [next(it) for _ in range(n)]


def assert_same(a, b):
  for x, y in zip(a, b, strict=True):
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def test_same_seed_same_batches_other_seed_differs():
  world = synthetic.SyntheticWorld(image_size=32)
  _, a = batches(world, 3)
  _, b = batches(world, 3)
  assert_same(a, b)
  _, c = batches(world, 3, seed=1)
  assert not np.array_equal(a[0]['images'], c[0]['images'])
  assert a[0]['images'].dtype == np.uint8 and a[0]['images'].shape == (8, 32, 32, 3)
  assert a[0]['tokens'].shape == (8, 32) and (a[0]['tokens'][:, 0] == 1022).all()


@pytest.mark.parametrize('num_workers', [0, 2])
def test_restore_mid_epoch_continues_sample_for_sample(num_workers):
  source = Numbered(20)  # 2.5 batches per epoch: the restore point is mid-epoch
  it, head = batches(source, 3, num_workers=num_workers)
  state = it.get_state()
  tail = [next(it) for _ in range(4)]
  restored = pipeline.host_batches(
      source, tokenizer=TOKENIZER, image_size=32, global_batch=8, seed=0, num_workers=num_workers
  )
  restored.set_state(state)
  assert_same(tail, [next(restored) for _ in range(4)])
  # The uninterrupted stream with workers equals the one without: workers change nothing.
  _, plain = batches(source, 7)
  assert_same(head + tail, plain)


def test_hosts_split_every_epoch_without_overlap():
  source = Numbered(48)
  per_epoch = 48 // 8  # global batches per epoch
  hosts = [
      pipeline.host_batches(
          source,
          tokenizer=TOKENIZER,
          image_size=32,
          global_batch=8,
          seed=0,
          process_index=p,
          process_count=2,
      )
      for p in range(2)
  ]
  epochs = []
  for _ in range(2):
    keys = [k for h in hosts for _ in range(per_epoch) for k in next(h)['keys']]
    assert sorted(keys, key=int) == [str(i) for i in range(48)]  # each sample exactly once
    epochs.append(keys)
  assert epochs[0] != epochs[1]  # reshuffled each epoch


def test_wds_and_arrayrecord_give_the_same_batches(tmp_path):
  records = [synthetic.SyntheticWorld(image_size=32)[i] for i in range(24)]
  write_shards(records, tmp_path / 'wds', fmt='wds', shard_size=10, image_format='png')
  write_shards(records, tmp_path / 'ar', fmt='arrayrecord', shard_size=10, image_format='png')
  _, from_wds = batches(WdsSource(str(tmp_path / 'wds')), 4)
  _, from_ar = batches(ArrayRecordSource(str(tmp_path / 'ar')), 4)
  assert_same(from_wds, from_ar)


def corrupt_shard(path):
  """Ten good samples, one with truncated JPEG bytes and one without a caption."""
  samples = []
  for i in range(12):
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 10 * i, np.uint8)).save(buffer, 'JPEG')
    members = {'jpg': buffer.getvalue(), 'txt': b'a blue square .'}
    if i == 3:
      members['jpg'] = members['jpg'][:60]
    if i == 7:
      del members['txt']
    samples.append((f'{i:05d}', members))
  write_wds(samples, str(path))


def lenient_eval_batches(source):
  """Batches of 10 in order, where up to half the records may be bad."""
  return pipeline.host_batches(
      source,
      tokenizer=TOKENIZER,
      image_size=32,
      global_batch=10,
      seed=0,
      train=False,
      max_bad_fraction=0.5,
      prefetch=0,
  )


def test_bad_records_are_skipped_and_counted(tmp_path, caplog):
  corrupt_shard(tmp_path / '00000.tar')
  source = WdsSource(str(tmp_path / '00000.tar'))
  it = lenient_eval_batches(source)
  batch = next(it)
  assert sorted(batch['keys']) == [f'{i:05d}' for i in range(12) if i not in (3, 7)]
  assert batch['bad_records'] == {'undecodable image': 1, 'missing caption': 1}
  assert '00000.tar:00003' in caplog.text and '00000.tar:00007' in caplog.text
  state = it.get_state()  # the counts are part of the resumable state
  assert state['bad'] == {'undecodable image': 1, 'missing caption': 1}


def test_strict_mode_stops_at_the_first_bad_record(tmp_path):
  corrupt_shard(tmp_path / '00000.tar')
  source = WdsSource(str(tmp_path / '00000.tar'))
  it = pipeline.host_batches(
      source, tokenizer=TOKENIZER, image_size=32, global_batch=10, seed=0, train=False, strict=True
  )
  with pytest.raises(pipeline.DataError, match=r'00000\.tar:00003: undecodable image'):
    next(it)


def test_too_many_bad_records_stop_the_run(tmp_path):
  corrupt_shard(tmp_path / '00000.tar')
  source = WdsSource(str(tmp_path / '00000.tar'))
  it = pipeline.host_batches(
      source,
      tokenizer=TOKENIZER,
      image_size=32,
      global_batch=4,
      seed=0,
      max_bad_fraction=0.01,
      min_records=10,
  )
  with pytest.raises(pipeline.DataError, match=r'more than max_bad_fraction=0\.01'):
    for _ in range(10):
      next(it)


def test_random_resized_crop_boxes():
  rng = np.random.default_rng(0)
  boxes = [transforms.random_crop_box(100, 90, rng) for _ in range(200)]
  for left, top, right, bottom in boxes:
    w, h = right - left, bottom - top
    assert 0 <= left and right <= 100 and 0 <= top and bottom <= 90
    assert 0.88 <= w * h / (100 * 90) <= 1.0  # scale (0.9, 1) up to rounding
    assert 3 / 4 - 0.03 <= w / h <= 4 / 3 + 0.03
  assert len({b[:2] for b in boxes}) > 10  # positions vary
  # Too wide for any box of 90% area within the aspect range: torchvision's centre fallback.
  assert transforms.random_crop_box(120, 80, rng) == (6, 0, 113, 80)


def test_eval_crop_is_the_centre():
  pixels = np.zeros((40, 80, 3), np.uint8)
  pixels[:, 20:60] = 255  # the central 40 x 40 square is white
  out = transforms.center_crop(pixels, 20)
  assert out.shape == (20, 20, 3) and out.min() > 200  # bicubic rings slightly at the edge


def test_global_batches_on_the_mesh_are_normalised():
  mesh = sharding.make_mesh(data=4, fsdp=2)
  options = dict(tokenizer=TOKENIZER, image_size=32, global_batch=16, seed=0)
  first_key = int(next(pipeline.host_batches(Numbered(64), **options))['keys'][0])
  stream = pipeline.Batches(pipeline.host_batches(Numbered(64), **options), mesh, 16, 64)
  batch = next(stream)
  assert batch['images'].shape == (16, 32, 32, 3) and batch['images'].dtype == np.float32
  assert batch['images'].sharding.spec[0] == ('data', 'fsdp')
  assert len(batch['images'].addressable_shards) == 8
  # Numbered images are flat at their index: normalised with CLIP's mean and std.
  mean, std = np.array(transforms.CLIP_MEAN) * 255, np.array(transforms.CLIP_STD) * 255
  np.testing.assert_allclose(
      np.asarray(batch['images'][0, 0, 0]), (first_key - mean) / std, rtol=1e-5
  )
  assert stream.samples_seen == 16 and stream.epoch == 0.25
  assert jax.device_get(batch['tokens']).shape == (16, 32)


class Captioned(Numbered):
  """Numbered, with a caption per record: a word the tokenizer does not know, an empty one,
  and one far longer than the context."""

  CAPTIONS = {3: 'a photo of a zebra .', 5: '   ', 6: ' '.join(['a red circle'] * 40)}

  def __getitem__(self, i):
    return super().__getitem__(i) | {'caption': self.CAPTIONS.get(i, 'a red circle .')}


def test_captions_the_tokenizer_rejects_or_that_are_empty_are_bad_records(caplog):
  batch = next(lenient_eval_batches(Captioned(12)))
  assert sorted(batch['keys'], key=int) == [str(i) for i in range(12) if i not in (3, 5)]
  assert batch['bad_records'] == {'untokenizable caption': 1, 'empty caption': 1}
  assert "numbered:3: untokenizable caption (ValueError: word 'zebra'" in caplog.text
  # The long caption is cut to the 32-token context and still ends in EOT.
  long = batch['tokens'][list(batch['keys']).index('6')]
  assert len(long) == 32 and long[-1] == TOKENIZER.eot_id
