"""The synthetic image-text world: determinism, the record contract, captions and eval sets."""

import pickle

import numpy as np
import pytest

from scaling_vlm.data import synthetic
from scaling_vlm.data.synthetic import (
    COLOUR_WORDS,
    SHAPE_WORDS,
    VOCABULARY,
    SyntheticWorld,
    caption_words,
    retrieval_split,
    zero_shot_tasks,
)

# Every word naming a shape or a colour (with plurals) -> its canonical name.
SHAPE_OF = {w: shape for shape, words in SHAPE_WORDS.items() for w in words} | {
    synthetic.captions.plural(w): shape for shape, words in SHAPE_WORDS.items() for w in words
}
COLOUR_OF = {w: colour for colour, words in COLOUR_WORDS.items() for w in words}


@pytest.fixture(scope='module')
def train_records():
  world = SyntheticWorld(seed=0)
  return [world[i] for i in range(2000)]


def _same(a: dict, b: dict) -> bool:
  return (
      np.array_equal(a['image'], b['image'])
      and a['caption'] == b['caption']
      and a['json'] == b['json']
  )


def test_record_contract(train_records):
  record = train_records[7]
  assert set(record) == {'key', 'shard', 'image', 'caption', 'error', 'json'}
  assert record['key'] == 'train-0000000007' and record['shard'] == 'synthetic'
  assert record['error'] is None
  assert isinstance(record['caption'], str) and record['caption']
  assert record['image'].dtype == np.uint8 and record['image'].shape == (64, 64, 3)
  assert 1 <= len(record['json']['objects']) <= synthetic.MAX_OBJECTS
  for size in (32, 96):
    assert SyntheticWorld(image_size=size)[0]['image'].shape == (size, size, 3)


def test_records_are_a_function_of_seed_split_and_index(train_records):
  world = SyntheticWorld(seed=0)
  assert _same(world[5], train_records[5])
  assert _same(pickle.loads(pickle.dumps(world))[5], train_records[5])
  assert not _same(world[6], train_records[5])
  assert not np.array_equal(SyntheticWorld(seed=1)[5]['image'], train_records[5]['image'])
  assert len({r['caption'] for r in train_records}) > 0.8 * len(train_records)


def test_train_and_val_are_different_streams(train_records):
  val = SyntheticWorld(split='val')
  for i in range(50):
    assert not np.array_equal(val[i]['image'], train_records[i]['image'])
  assert val[3]['key'] == 'val-0000000003'


def test_bad_arguments_name_the_valid_choices():
  with pytest.raises(ValueError, match="'train', 'val'"):
    SyntheticWorld(split='test')
  with pytest.raises(ValueError, match='image_size'):
    SyntheticWorld(image_size=16)
  with pytest.raises(ValueError, match='shape_colour'):
    synthetic.ZeroShotSource('texture')
  with pytest.raises(IndexError):
    SyntheticWorld(size=10)[10]
  assert len(SyntheticWorld(size=10)) == 10


def test_vocabulary_covers_every_caption_and_prompt(train_records):
  assert len(VOCABULARY) <= 1000 and len(set(VOCABULARY)) == len(VOCABULARY)
  assert all(caption_words(word) == [word] for word in VOCABULARY)  # one lower-case token each
  texts = [r['caption'] for r in train_records]
  texts += [c for i in range(300) for c in retrieval_split()[i]['captions']]
  for task in zero_shot_tasks():
    texts += [t.format(c=c) for t in task.templates for c in task.classnames]
    texts += [task.source[i]['caption'] for i in range(50)]
  missing = {w for text in texts for w in caption_words(text)} - set(VOCABULARY)
  assert not missing


def test_captions_fit_the_tiny_context(train_records):
  # 32 tokens with SOT and EOT; a few long captions may be cut, most must not.
  lengths = np.array([len(caption_words(r['caption'])) for r in train_records])
  assert np.mean(lengths <= 30) > 0.98


def test_captions_mention_only_what_the_image_holds(train_records):
  for record in train_records:
    objects = record['json']['objects']
    words = caption_words(record['caption'])
    assert {SHAPE_OF[w] for w in words if w in SHAPE_OF} <= {o['shape'] for o in objects}
    assert {COLOUR_OF[w] for w in words if w in COLOUR_OF} <= {o['colour'] for o in objects}


def test_captions_are_partial_but_informative(train_records):
  names_a_shape = [any(w in SHAPE_OF for w in caption_words(r['caption'])) for r in train_records]
  assert 0.7 < np.mean(names_a_shape) < 1.0  # count-only captions name no shape


def test_relations_follow_positions(train_records):
  for record in train_records[:300]:
    objects = record['json']['objects']
    for a, relation, b in record['json']['relations']:
      dx, dy = objects[b]['x'] - objects[a]['x'], objects[b]['y'] - objects[a]['y']
      expected = {
          'left of': dx > 0,
          'right of': dx < 0,
          'above': dy > 0,
          'below': dy < 0,
      }[relation]
      assert expected, (objects, relation)


def test_zero_shot_tasks():
  tasks = {task.name: task for task in zero_shot_tasks(size=40)}
  assert {'shape', 'colour', 'count', 'shape_colour'} <= set(tasks)
  for task in tasks.values():
    assert len(task.templates) >= 4 and all('{c}' in t for t in task.templates)
    assert len(task.source) == 40
    for i in range(len(task.source)):
      record = task.source[i]
      assert record['key'] == f'{task.name}-{i:010d}' and record['image'].shape == (64, 64, 3)
      label, objects = record['label'], record['json']['objects']
      assert 0 <= label < len(task.classnames)
      classname, first = task.classnames[label], objects[0]
      if task.name == 'count':
        assert classname == synthetic.NUMBERS[len(objects) - 1]
        assert len({o['shape'] for o in objects}) == 1
        continue
      assert len(objects) == 1
      assert (
          classname
          == {
              'shape': first['shape'],
              'colour': first['colour'],
              'shape_colour': f"{first['colour']} {first['shape']}",
          }[task.name]
      )


def test_zero_shot_sets_are_not_training_scenes(train_records):
  shape_task = zero_shot_tasks(size=50)[0]
  train_images = {r['image'].tobytes() for r in train_records}
  assert not any(shape_task.source[i]['image'].tobytes() in train_images for i in range(50))


def test_retrieval_records_have_five_distinct_captions():
  source = retrieval_split(size=100)
  for i in range(100):
    record = source[i]
    assert len(record['captions']) == 5 and len(set(record['captions'])) == 5
    assert record['caption'] == record['captions'][0]


def test_grain_reads_it_as_a_random_access_source():
  grain = pytest.importorskip('grain')
  dataset = grain.MapDataset.source(SyntheticWorld(size=20)).shuffle(seed=0)
  keys = {dataset[i]['key'] for i in range(len(dataset))}
  assert keys == {f'train-{i:010d}' for i in range(20)}


def _describes(record) -> bool:
  """Whether every shape and colour the caption names is in the image."""
  objects = record['json']['objects']
  words = caption_words(record['caption'])
  return {SHAPE_OF[w] for w in words if w in SHAPE_OF} <= {o['shape'] for o in objects} and {
      COLOUR_OF[w] for w in words if w in COLOUR_OF
  } <= {o['colour'] for o in objects}


def test_caption_noise_swaps_that_share_of_captions_and_keeps_the_images(train_records):
  noisy = SyntheticWorld(seed=0, caption_noise=0.5)
  records = [noisy[i] for i in range(len(train_records))]
  swapped = [a['caption'] != b['caption'] for a, b in zip(records, train_records)]
  assert all(np.array_equal(a['image'], b['image']) for a, b in zip(records, train_records))
  # A swapped caption describes another scene: it may still happen to fit this one.
  assert 0.45 < np.mean(swapped) < 0.55
  assert np.mean([not _describes(r) for r in records]) > 0.3
  assert all(_describes(r) for r, s in zip(records, swapped) if not s)
  assert all(_same(noisy[i], records[i]) for i in (0, 7, 1999))  # still a pure function
  with pytest.raises(ValueError, match=r'caption_noise must be in \[0, 1\), got 1.0'):
    SyntheticWorld(caption_noise=1.0)
