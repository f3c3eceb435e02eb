"""Tests for the shard sources (webdataset tars, ArrayRecord), shard specs and the writer CLI.

Every shard is written here, into tmp_path: tars with `tarfile` directly, as img2dataset
lays them out, so that the reader is not only checked against this repository's writer.
"""

import io
import json
import os
import pickle
import re
import tarfile

import numpy as np
import pytest
from PIL import Image

from scaling_vlm.data import wds, write
from scaling_vlm.data.arrayrecord import ArrayRecordSource
from scaling_vlm.data.shards import expand_shards
from scaling_vlm.data.wds import WdsSource
from scaling_vlm.data.write import write_shards


def _pixels(seed: int, size: int = 8) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _encoded(seed: int, image_format: str = 'JPEG') -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(_pixels(seed)).save(buffer, image_format)
  return buffer.getvalue()


def _sample(i: int, **overrides: bytes | None) -> tuple[str, dict[str, bytes]]:
  """An img2dataset sample: KEY.jpg, KEY.txt, KEY.json (a None override drops a member)."""
  key = f'{i:09d}'
  members = {
      'jpg': _encoded(i),
      'txt': f'  caption {i}\n'.encode(),
      'json': json.dumps({'key': key, 'url': f'http://x/{i}.jpg'}).encode(),
  }
  members.update(overrides)
  return key, {ext: data for ext, data in members.items() if data is not None}


def _tar(path: str, samples: list[tuple[str, dict[str, bytes]]]) -> str:
  with tarfile.open(path, 'w') as tar:
    for key, members in samples:
      for ext, data in members.items():
        info = tarfile.TarInfo(f'{key}.{ext}')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  return path


@pytest.fixture
def shards(tmp_path):
  """Two img2dataset-style shards of 3 and 2 records (one png, one with an extra member)."""
  first = [_sample(0), _sample(1, jpg=None, png=_encoded(1, 'PNG')), _sample(2, parquet=b'x')]
  return [
      _tar(str(tmp_path / '00000.tar'), first),
      _tar(str(tmp_path / '00001.tar'), [_sample(3), _sample(4)]),
  ]


def _same(a: dict, b: dict) -> bool:
  """Equal records, wherever they were read from."""
  return {k: v for k, v in a.items() if k != 'shard'} == {
      k: v for k, v in b.items() if k != 'shard'
  }


# -- expand_shards ---------------------------------------------------------------------------


def test_expand_shards_forms(tmp_path):
  paths = [str(tmp_path / f'{i:05d}.tar') for i in range(3)]
  for path in paths:
    open(path, 'wb').close()
  (tmp_path / 'notes.txt').write_text('not a shard')
  assert expand_shards(paths) == paths
  assert expand_shards(','.join(paths)) == paths
  assert expand_shards(str(tmp_path / '{00000..00002}.tar')) == paths
  assert expand_shards(f'{tmp_path}/{{00000,00001}}.tar,{paths[2]}') == paths
  assert expand_shards(str(tmp_path / '*.tar')) == paths
  assert expand_shards(str(tmp_path)) == paths
  # Missing files are the sources' business (they count them), not an error here.
  assert expand_shards(str(tmp_path / '{00002..00003}.tar'))[1].endswith('00003.tar')


def test_expand_shards_names_an_empty_spec(tmp_path):
  with pytest.raises(ValueError, match='nothing-here'):
    expand_shards(str(tmp_path / 'nothing-here*.tar'))
  with pytest.raises(ValueError, match='names no files'):
    expand_shards([])


# -- WdsSource -------------------------------------------------------------------------------


def test_wds_source_reads_img2dataset_tars(shards):
  source = WdsSource(shards)
  assert len(source) == 5
  assert source.stats == {
      'shards': 2,
      'records': 5,
      'missing_shards': [],
      'truncated_shards': [],
      'record_errors': {},
  }
  for i in range(5):
    record = source[i]
    assert record['key'] == f'{i:09d}'
    assert record['shard'] == shards[i // 3]
    assert record['image'] == _encoded(i, 'PNG' if i == 1 else 'JPEG')
    assert record['caption'] == f'caption {i}'
    assert record['json'] == {'key': f'{i:09d}', 'url': f'http://x/{i}.jpg'}
    assert record['error'] is None
  with pytest.raises(IndexError):
    source[5]


def test_wds_index_is_cached_beside_the_shard_and_reused(shards, monkeypatch):
  WdsSource(shards)
  index_path = f'{shards[0]}.index.json'
  index = json.load(open(index_path))
  assert [r['key'] for r in index['records']] == [f'{i:09d}' for i in range(3)]
  assert index['damage'] is None and index['size'] == os.path.getsize(shards[0])
  mtime = os.stat(index_path).st_mtime_ns

  def no_scan(path):
    raise AssertionError(f'{path} was scanned again')

  monkeypatch.setattr(wds, 'build_index', no_scan)
  assert WdsSource(shards)[4]['caption'] == 'caption 4'
  assert os.stat(index_path).st_mtime_ns == mtime
  # A shard that changed (here: its mtime) is indexed again.
  os.utime(shards[0], ns=(mtime + 10**9, mtime + 10**9))
  with pytest.raises(AssertionError, match='scanned again'):
    WdsSource(shards)


def test_wds_index_goes_to_cache_dir_for_a_read_only_folder(shards, tmp_path, monkeypatch):
  folder = os.path.dirname(shards[0])
  os.chmod(folder, 0o555)
  try:
    if os.access(folder, os.W_OK):  # root writes anywhere: make the folder read-only to us
      monkeypatch.setattr(wds, '_writable', lambda folder: False)
    source = WdsSource(shards, cache_dir=str(tmp_path / 'cache'))
    monkeypatch.setattr(wds, 'DEFAULT_CACHE_DIR', str(tmp_path / 'default'))
    default = WdsSource(shards[:1])  # no cache_dir: the default cache folder
  finally:
    os.chmod(folder, 0o755)
  assert not any(name.endswith('.index.json') for name in os.listdir(folder))
  cached = sorted(os.listdir(tmp_path / 'cache'))
  assert len(cached) == 2 and cached[0].startswith('00000.tar-')
  assert os.listdir(tmp_path / 'default')[0].startswith('00000.tar-')
  assert source[3]['caption'] == 'caption 3' and len(default) == 3


def test_wds_source_pickles_without_file_handles(shards):
  source = WdsSource(shards)
  before = [source[i] for i in range(len(source))]  # opens descriptors, which must not travel
  clone = pickle.loads(pickle.dumps(source))
  assert [clone[i] for i in range(len(clone))] == before
  assert repr(clone) == repr(source)


# -- bad data --------------------------------------------------------------------------------


def test_missing_shard_is_counted_or_raised(shards, caplog):
  spec = [shards[0], shards[0].replace('00000', '00007'), shards[1]]
  source = WdsSource(spec)
  assert len(source) == 5
  assert source.stats['missing_shards'] == [spec[1]]
  assert spec[1] in caplog.text
  with pytest.raises(FileNotFoundError, match='00007.tar'):
    WdsSource(spec, strict=True)
  ar = write_shards([WdsSource(shards)[0]], os.path.dirname(shards[0]) + '/ar', fmt='arrayrecord')
  ar_source = ArrayRecordSource([spec[1], ar[0]])
  assert len(ar_source) == 1 and ar_source.stats['missing_shards'] == [spec[1]]
  with pytest.raises(FileNotFoundError, match='00007.tar'):
    ArrayRecordSource([spec[1], ar[0]], strict=True)


@pytest.mark.parametrize('cut', ['member', 'header'])
def test_truncated_tar_keeps_the_records_before_the_damage(tmp_path, caplog, cut):
  path = _tar(str(tmp_path / '00000.tar'), [_sample(i) for i in range(3)])
  with tarfile.open(path) as tar:
    third_image = tar.getmember('000000002.jpg')
  size = third_image.offset_data + 10 if cut == 'member' else third_image.offset + 100
  data = open(path, 'rb').read()
  open(path, 'wb').write(data[:size])
  source = WdsSource(path)
  assert [source[i]['key'] for i in range(len(source))] == ['000000000', '000000001']
  assert source[1]['image'] == _encoded(1)
  assert source.stats['truncated_shards'] == [path]
  assert path in caplog.text
  with pytest.raises(ValueError, match='00000.tar'):
    WdsSource(path, strict=True)


def test_key_without_caption_is_a_record_with_an_error(tmp_path):
  path = _tar(str(tmp_path / '00000.tar'), [_sample(0), _sample(1, txt=None), _sample(2, jpg=None)])
  source = WdsSource(path)
  assert len(source) == 3
  assert source[0]['error'] is None
  assert source[1]['error'] == 'missing caption' and source[1]['caption'] is None
  assert source[2]['error'] == 'missing image' and source[2]['image'] is None
  assert source.stats['record_errors'] == {'missing caption': 1, 'missing image': 1}
  with pytest.raises(ValueError, match=r"00000\.tar: key '000000001' has no a caption"):
    WdsSource(path, strict=True)


# -- writing: wds and ArrayRecord agree ------------------------------------------------------


def test_wds_and_arrayrecord_hold_identical_records(tmp_path):
  records = [
      {'key': f'k{i}', 'image': _encoded(i), 'caption': f'caption {i}', 'json': {'i': i}}
      for i in range(3)
  ] + [{'key': 'k3', 'image': _pixels(3), 'caption': 'decoded', 'json': {}}]
  kwargs = {'shard_size': 2, 'image_format': 'png'}
  tars = write_shards(records, str(tmp_path / 'wds'), fmt='wds', **kwargs)
  ars = write_shards(records, str(tmp_path / 'ar'), fmt='arrayrecord', **kwargs)
  assert [os.path.basename(p) for p in tars] == ['00000.tar', '00001.tar']
  assert [os.path.basename(p) for p in ars] == ['00000.array_record', '00001.array_record']
  with tarfile.open(tars[0]) as tar:  # exactly img2dataset's members
    assert sorted(tar.getnames()) == ['k0.jpg', 'k0.json', 'k0.txt', 'k1.jpg', 'k1.json', 'k1.txt']
  from_wds, from_ar = WdsSource(tars), ArrayRecordSource(ars)
  assert len(from_wds) == len(from_ar) == 4
  for i in range(4):
    assert _same(from_wds[i], from_ar[i]), i
    assert from_ar[i]['shard'] == ars[i // 2]
  assert [from_ar[i]['image'] for i in range(3)] == [r['image'] for r in records[:3]]
  assert np.array_equal(
      np.asarray(Image.open(io.BytesIO(from_ar[3]['image']))), records[3]['image']
  )
  assert pickle.loads(pickle.dumps(from_ar))[3] == from_ar[3]


def test_labels_and_captions_need_arrayrecord(tmp_path):
  record = {'key': 'a', 'image': _encoded(0), 'caption': None, 'label': np.int64(7)}
  record['captions'] = ['one', 'two']
  [path] = write_shards([record], str(tmp_path / 'ar'), fmt='arrayrecord')
  read = ArrayRecordSource(path)[0]
  assert (read['label'], read['captions'], read['caption']) == (7, ['one', 'two'], None)
  with pytest.raises(ValueError, match='arrayrecord'):
    write_shards([record], str(tmp_path / 'wds'), fmt='wds')


def test_writer_skips_and_counts_unwritable_records(tmp_path, caplog):
  records = [
      {'key': 'good', 'image': _encoded(0), 'caption': 'fine'},
      {'key': 'bad', 'image': b'not an image', 'caption': 'x'},
      {'key': 'gone', 'image': None, 'caption': None, 'error': 'missing image'},
  ]
  paths = write_shards(records, str(tmp_path), fmt='wds')
  assert len(WdsSource(paths)) == 1
  assert 'unreadable image: 1' in caplog.text and 'missing image: 1' in caplog.text
  with pytest.raises(FileExistsError, match='already holds shards'):
    write_shards(records, str(tmp_path), fmt='wds')


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_folder_with_csv_captions_to_wds(tmp_path, capsys):
  images = tmp_path / 'images'
  images.mkdir()
  for i in range(3):
    (images / f'photo {i}.jpg').write_bytes(_encoded(i))
  captions = tmp_path / 'captions.csv'
  captions.write_text(
      'filename,caption\n' + ''.join(f'photo {i}.jpg,"a, b {i}"\n' for i in range(3))
  )
  out = tmp_path / 'out'
  write.main(
      [
          f'--input=folder:{images}',
          f'--captions={captions}',
          f'--output={out}',
          '--format=wds',
          '--shard-size=2',
      ]
  )
  assert 'wrote 3 records in 2 wds shards' in capsys.readouterr().out
  source = WdsSource(str(out))
  assert [source[i]['caption'] for i in range(3)] == ['a, b 0', 'a, b 1', 'a, b 2']
  assert source[2]['image'] == _encoded(2) and source[2]['json'] == {'filename': 'photo 2.jpg'}


@pytest.mark.parametrize(
    'args, message',
    [
        (['--input=folder:{tmp}', '--captions={tmp}/none.csv'], 'none.csv'),
        (['--input=folder:{tmp}'], 'needs --captions'),
        (['--input=folder:{tmp}', '--captions={tmp}/listed.jsonl'], 'missing.jpg'),
        (['--input=s3:bucket/x.tar'], "'s3' .* folder:DIR"),
        (['--input=synthetic:many'], 'positive whole number'),
    ],
)
def test_cli_names_bad_input(tmp_path, capsys, args, message):
  (tmp_path / 'listed.jsonl').write_text('{"filename": "missing.jpg", "caption": "c"}\n')
  argv = [a.format(tmp=tmp_path) for a in args] + [f'--output={tmp_path}/out', '--format=wds']
  with pytest.raises(SystemExit):
    write.main(argv)
  assert re.search(message, capsys.readouterr().err)
  assert not (tmp_path / 'out').exists()


def test_cli_synthetic_to_arrayrecord(tmp_path, capsys):
  pytest.importorskip('scaling_vlm.data.synthetic')
  out = tmp_path / 'out'
  write.main(
      [
          '--input=synthetic:5',
          f'--output={out}',
          '--format=arrayrecord',
          '--image-size=32',
      ]
  )
  assert 'wrote 5 records in 1 arrayrecord shards' in capsys.readouterr().out
  source = ArrayRecordSource(str(out))
  assert len(source) == 5 and all(isinstance(source[i]['image'], bytes) for i in range(5))
