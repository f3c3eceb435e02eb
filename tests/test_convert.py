"""The open_clip bridge against golden checkpoints written by open_clip and the MaMMUT fork
themselves (tests/fixtures/make_open_clip_fixtures.py; no torch here): the same outputs to
1e-5, export then import bit for bit, and every kind of wrong file refused in one line."""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

from scaling_vlm import convert, models
from scaling_vlm.convert import files, layout
from scaling_vlm.models.config import ModelConfig, TextConfig, VisionConfig

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
VISION = VisionConfig(64, 2, 4, 8, image_size=32)
# The sizes make_open_clip_fixtures.py gave open_clip and the fork.
FIXTURE_CONFIGS = {
    'clip': ModelConfig(
        'fixture-clip', 'clip', 48, VISION, TextConfig(64, 2, 4, context_length=16, vocab_size=1000)
    ),
    'mammut': ModelConfig(
        'fixture-mammut',
        'mammut',
        64,
        VISION,
        TextConfig(64, 4, 4, context_length=16, vocab_size=1000),
        mlp_before_cross_attn=False,
    ),
}


def fixture(kind):
  return os.path.join(FIXTURES, f'open_clip_{kind}.safetensors'), dict(
      np.load(os.path.join(FIXTURES, f'open_clip_{kind}.npz'))
  )


@pytest.mark.parametrize('kind', ['clip', 'mammut'])
def test_an_open_clip_checkpoint_gives_open_clips_outputs(kind):
  path, reference = fixture(kind)
  model = convert.from_open_clip(path, FIXTURE_CONFIGS[kind])
  outputs = model(jnp.asarray(reference['images']), jnp.asarray(reference['tokens']))
  for name in ('image_emb', 'text_emb') + (('caption_logits',) if kind == 'mammut' else ()):
    np.testing.assert_allclose(outputs[name], reference[name], atol=1e-5, rtol=0, err_msg=name)
  np.testing.assert_allclose(outputs['logit_scale'], reference['logit_scale'], rtol=1e-6)  # the log


@pytest.mark.parametrize('kind', ['clip', 'mammut'])
def test_import_then_export_gives_back_the_same_tensors(kind, tmp_path):
  path, _ = fixture(kind)
  exported = tmp_path / 'model.safetensors'
  convert.to_open_clip(convert.from_open_clip(path, FIXTURE_CONFIGS[kind]), str(exported))
  original, again = load_file(path), load_file(str(exported))
  assert original.keys() == again.keys()
  for key in original:
    assert original[key].dtype == again[key].dtype and np.array_equal(original[key], again[key])


BRIDGED = [n for n in models.ZOO if models.ZOO[n].arch != 'climp']


def test_every_zoo_name_places_each_of_its_tensors_once():
  for name in BRIDGED:
    config = models.get_config(name)
    # Scanned layers trace once per tower: the same tensors, far faster to lay out.
    ours = convert.flat_params(models.abstract(config.replace(scan_layers=True)))
    placed = [n for rule in layout.rules(config) for n in rule.ours]
    assert sorted(placed) == sorted(ours), name


# One of each kind of block: -alt text towers, LayerScale (M-16-alt), MaMMUT decoders without
# the MLP before cross-attention (S) and with every MLP and a 768-wide decoder (B-16).
@pytest.mark.parametrize(
    'name', ['ViT-S-32-alt', 'ViT-M-16-alt', 'mammut_ViT-S-32', 'mammut_ViT-B-16']
)
def test_shapes_go_through_the_reshapes_both_ways(name):
  config = models.get_config(name)
  shapes = {k: v.shape for k, v in convert.flat_params(models.abstract(config)).items()}
  for rule in layout.rules(config):
    theirs = rule.to_theirs(*(np.zeros(shapes[n], np.float32) for n in rule.ours))
    assert tuple(a.shape for a in rule.to_ours(theirs)) == tuple(shapes[n] for n in rule.ours)


def rewritten(tmp_path, kind, edit):
  path, _ = fixture(kind)
  tensors = load_file(path)
  edit(tensors)
  out = str(tmp_path / 'edited.safetensors')
  save_file(tensors, out)
  return out


def test_wrong_files_are_refused_naming_what_is_wrong(tmp_path):
  clip, mammut = FIXTURE_CONFIGS['clip'], FIXTURE_CONFIGS['mammut']
  path, _ = fixture('mammut')
  with pytest.raises(ValueError, match=r'is a MaMMUT checkpoint \(it has map_viz2txt_kv\)'):
    convert.from_open_clip(path, clip)
  with pytest.raises(ValueError, match=r'is a CLIP checkpoint .* not one of the MaMMUT model'):
    convert.from_open_clip(fixture('clip')[0], mammut)
  missing = rewritten(tmp_path, 'clip', lambda t: t.pop('visual.ln_post.bias'))
  with pytest.raises(ValueError, match=r'1 missing \(visual.ln_post.bias\)'):
    convert.from_open_clip(missing, clip)
  extra = rewritten(tmp_path, 'clip', lambda t: t.update(extra_head=np.zeros(3, np.float32)))
  with pytest.raises(ValueError, match=r'1 unexpected \(extra_head\)'):
    convert.from_open_clip(extra, clip)
  shape = rewritten(
      tmp_path, 'clip', lambda t: t.update(text_projection=np.zeros((64, 32), np.float32))
  )
  with pytest.raises(ValueError, match=r'text_projection is \(64, 32\), but fixture-clip needs'):
    convert.from_open_clip(shape, clip)
  with pytest.raises(ValueError, match=r'open_clip has no CLIMP models'):
    convert.from_open_clip(path, 'climp_tiny-1')


class Payload:
  """Unpickling this would create a file: a general unpickler runs it, we must not."""

  def __init__(self, target):
    self.target = target

  def __reduce__(self):
    return (open, (self.target, 'w'))


def test_a_pickle_that_is_not_a_state_dict_is_refused_not_run(tmp_path):
  target = tmp_path / 'pwned'
  path = tmp_path / 'model.pt'
  with open(path, 'wb') as file:
    pickle.dump({'state_dict': Payload(str(target))}, file)
  with pytest.raises(ValueError, match=r'torch is not installed|not a plain torch state dict'):
    files.read(str(path))
  assert not target.exists()
  (tmp_path / 'model.h5').write_bytes(b'')
  with pytest.raises(ValueError, match=r"expected one of \['.safetensors', '.pt'"):
    files.read(str(tmp_path / 'model.h5'))


def test_an_open_clip_training_checkpoint_is_read_with_its_epoch(tmp_path):
  torch = pytest.importorskip('torch')
  path, reference = fixture('clip')
  state = {f'module.{k}': torch.from_numpy(v) for k, v in load_file(path).items()}
  pt = tmp_path / 'epoch_3.pt'
  torch.save({'epoch': 3, 'name': 'run', 'state_dict': state, 'optimizer': {}}, pt)
  read = files.read(str(pt))
  assert read.epoch == 3 and set(read.tensors) == set(load_file(path))


def tiny_run_config(name='tiny-1', **overrides):
  from configs import presets  # pylint: disable=import-outside-toplevel

  config = presets.for_model(name)
  config.train.global_batch, config.train.samples, config.train.warmup = 16, '64', '0'
  config.log.tensorboard = False
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  return config


def test_a_run_starts_from_an_open_clip_file_or_an_imported_run(tmp_path):
  from scaling_vlm import sharding  # pylint: disable=import-outside-toplevel
  from scaling_vlm.convert import runs  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import trainer  # pylint: disable=import-outside-toplevel

  source = models.build('tiny-1', seed=7)
  path = str(tmp_path / 'tiny.safetensors')
  convert.to_open_clip(source, path)
  runs.import_checkpoint(path, 'tiny-1', str(tmp_path / 'imported'), samples=64, global_batch=16)
  expected = {k: np.asarray(v) for k, v in convert.flat_params(source).items()}
  mesh = sharding.make_mesh(data=8)
  for spec, scan in (
      (path, False),
      (str(tmp_path / 'imported'), True),
      (f'{tmp_path}/imported:4', False),
  ):
    config = tiny_run_config(**{'init.checkpoint': spec, 'model.scan_layers': scan})
    init = trainer.init_params(config, str(tmp_path / 'new'))
    parts = trainer.setup(config, mesh, init=init)
    model = nnx.merge(parts.graphdef, parts.state.params)
    started = {k: np.asarray(v) for k, v in convert.flat_params(model).items()}
    assert started.keys() == expected.keys()
    assert all(np.array_equal(started[k], expected[k]) for k in expected), spec
    moments = [np.asarray(m) for m in jax.tree.leaves(parts.state.opt_state)]
    assert all(np.all(m == 0) for m in moments if m.ndim)  # a fresh optimiser


def test_a_checkpoint_of_another_model_is_refused_before_anything_is_written(tmp_path):
  from scaling_vlm.train import trainer  # pylint: disable=import-outside-toplevel

  path = str(tmp_path / 'tiny2.safetensors')
  convert.to_open_clip(models.build('tiny-2'), path)
  config = tiny_run_config(**{'init.checkpoint': path})
  with pytest.raises(
      ValueError,
      match=r'visual.conv1.weight is \(48, 3, 8, 8\), but tiny-1 needs' r' \(32, 3, 8, 8\)',
  ):
    trainer.train(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


@pytest.mark.slow
def test_a_cooldown_branches_from_an_imported_constant_lr_checkpoint(tmp_path):
  from scaling_vlm import run as run_lib  # pylint: disable=import-outside-toplevel
  from scaling_vlm.convert import runs  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import trainer  # pylint: disable=import-outside-toplevel

  path = str(tmp_path / 'released.safetensors')
  convert.to_open_clip(models.build('tiny-1', seed=5), path)
  parent = str(tmp_path / 'released')
  runs.import_checkpoint(
      path, 'tiny-1', parent, samples=64, global_batch=16, schedule='const', total_samples=256
  )
  branch = tiny_run_config(
      **{
          'optim.schedule': 'cooldown',
          'cooldown.parent': parent,
          'cooldown.start': '64',
          'train.samples': '128',
      }
  )
  trainer.train(branch, str(tmp_path / 'branch'))
  assert run_lib.Workdir(str(tmp_path / 'branch')).saved_steps() == {8}
  with pytest.raises(ValueError, match=r'holds parameters only .* --config.init.checkpoint='):
    trainer.train(run_lib.Workdir(parent).read_config(), parent)  # an import is not resumed


@pytest.mark.parametrize('name', ['ViT-B-32', 'mammut_ViT-B-32'])
def test_live_against_open_clip(name, tmp_path):
  """Where torch and open_clip (for MaMMUT: the fork) are installed: a randomly initialised
  open_clip model of the zoo's name gives the same embeddings here, and our export loads back
  into open_clip with no missing or unexpected keys."""
  torch = pytest.importorskip('torch')
  open_clip = pytest.importorskip('open_clip')
  from safetensors.torch import save_file as save_torch  # pylint: disable=import-outside-toplevel

  if name not in open_clip.list_models():
    pytest.skip(f'this open_clip has no {name} (MaMMUT needs the LAION-AI/open_clip_mammut fork)')
  reference = open_clip.create_model(name, pretrained=None).eval()
  path = str(tmp_path / 'model.safetensors')
  save_torch({k: v.contiguous() for k, v in reference.state_dict().items()}, path)
  ours = convert.from_open_clip(path, name)
  rng = np.random.default_rng(0)
  images = rng.normal(size=(2, 224, 224, 3)).astype(np.float32)
  tokens = np.zeros((2, 77), np.int64)
  tokens[:, 0], tokens[:, 1:6], tokens[:, 6] = 49406, rng.integers(1, 49405, (2, 5)), 49407
  with torch.no_grad():
    image_emb = reference.encode_image(torch.from_numpy(images.transpose(0, 3, 1, 2)), True)
    text_emb = reference.encode_text(torch.from_numpy(tokens), normalize=True)
  outputs = ours(jnp.asarray(images), jnp.asarray(tokens.astype(np.int32)))
  np.testing.assert_allclose(outputs['image_emb'], image_emb.numpy(), atol=1e-5, rtol=0)
  np.testing.assert_allclose(outputs['text_emb'], text_emb.numpy(), atol=1e-5, rtol=0)
  exported = str(tmp_path / 'exported.safetensors')
  convert.to_open_clip(ours, exported)
  again = open_clip.create_model(name, pretrained=exported)  # strict: no missing/unexpected keys
  for key, value in again.state_dict().items():
    assert torch.equal(value, reference.state_dict()[key]), key
