"""Models defined by their numbers (`model.name=FILE.json`, `model.custom`): open_clip's schema
and ours read into the same architectures as the zoo's, checked as zoo entries are, trained,
and carried by the run's config so its results need no file."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from configs import presets
from scaling_vlm import flops, models, run as run_lib
from scaling_vlm.data import write
from scaling_vlm.evaluate import results
from scaling_vlm.models import custom
from scaling_vlm.train import config as config_lib, metrics, trainer

REPO = pathlib.Path(__file__).resolve().parents[1]
BPE = str(REPO / 'tests/fixtures/bpe_simple_vocab_16e6.txt.gz')

# open_clip/model_configs/*.json as open_clip 3.3 ships them, and the MaMMUT fork's form.
OPEN_CLIP = {
    'ViT-B-32': {
        'embed_dim': 512,
        'vision_cfg': {'image_size': 224, 'layers': 12, 'width': 768, 'patch_size': 32},
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 512, 'heads': 8,
                     'layers': 12},
    },
    'ViT-H-14': {
        'embed_dim': 1024,
        'vision_cfg': {'image_size': 224, 'layers': 32, 'width': 1280, 'head_width': 80,
                       'patch_size': 14},
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 1024, 'heads': 16,
                     'layers': 24},
    },
    'ViT-M-16-alt': {
        'embed_dim': 384,
        'vision_cfg': {'image_size': 224, 'layers': 12, 'width': 512, 'patch_size': 16,
                       'ls_init_value': 1e-4},
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 384, 'heads': 6,
                     'layers': 12},
    },
    'mammut_ViT-B-32': {
        'embed_dim': 512,
        'vision_cfg': {'image_size': 224, 'layers': 12, 'width': 768, 'patch_size': 32,
                       'output_tokens': True, 'pool_type': 'avg_all',
                       'final_ln_after_pool': True},
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 512, 'heads': 8,
                     'layers': 12, 'output_tokens': True, 'cross_attn_ratio': 2,
                     'does_full_decoding': True, 'has_mlp': False},
        'custom_text': True,
    },
}  # fmt: skip

# A CPU-sized CLIP that takes the CLIP BPE vocabulary: what no zoo entry is.
TINY_BPE = {
    'name': 'tiny-bpe',
    'embed_dim': 32,
    'vision': {'width': 32, 'layers': 1, 'heads': 2, 'patch_size': 16, 'image_size': 64},
    'text': {'width': 32, 'layers': 1, 'heads': 2, 'context_length': 32, 'vocab_size': 49408},
}


@pytest.mark.parametrize('name', sorted(OPEN_CLIP))
def test_open_clips_configs_are_the_zoos_models(name, tmp_path):
  path = tmp_path / f'{name}.json'
  path.write_text(json.dumps(OPEN_CLIP[name]))
  config = models.get_config(str(path))
  assert config == models.ZOO[name]  # every field: the same parameters and FLOPs
  assert flops.forward_gflops(config) == flops.forward_gflops(models.ZOO[name])


def test_our_schema_round_trips_every_zoo_entry():
  for name, config in models.ZOO.items():
    assert custom.from_json(custom.to_json(config), name) == config, name


@pytest.mark.parametrize(
    'change, message',
    [
        (lambda d: '{"embed_dim": 32,', r'is not valid JSON \(Expecting'),
        (lambda d: [d], r'must hold a JSON object, not list'),
        (lambda d: {**d, 'depth': 3}, r"unknown key 'depth'; allowed: .*embed_dim"),
        (lambda d: {**d, 'vision': {**d['vision'], 'heads': 3}}, r'width 32 is not divisible by vision heads 3'),
        (lambda d: {**d, 'vision': {**d['vision'], 'image_size': 60}}, r'image_size 60 is not divisible by patch_size 16'),
        (lambda d: {**d, 'text': {**d['text'], 'layers': 0}}, r'text.layers=0 must be >= 1'),
        (lambda d: {**d, 'text': {**d['text'], 'vocab_size': '49408'}}, r'text.vocab_size="49408" must be a whole number'),
        (lambda d: {k: v for k, v in d.items() if k != 'text'}, r'needs text'),
        (lambda d: {**d, 'arch': 'mammut'}, r'text layers 1 must be a multiple of cross_attn_ratio 2'),
        (lambda d: {**d, 'arch': 'coca'}, r"arch='coca' is not allowed; choose one of \['clip'"),
        (lambda d: {**OPEN_CLIP['ViT-B-32'], 'quick_gelu': True}, r'quick_gelu=true builds a model we do not have'),
        (lambda d: {**OPEN_CLIP['ViT-B-32'], 'vision_cfg': {**OPEN_CLIP['ViT-B-32']['vision_cfg'], 'width': 100}}, r'width 100 is not a multiple of vision_cfg.head_width 64'),
        (lambda d: {**OPEN_CLIP['ViT-B-32'], 'vision_cfg': {**OPEN_CLIP['ViT-B-32']['vision_cfg'], 'layers': [3, 4, 6, 3]}}, r'ResNet'),
        (lambda d: {**OPEN_CLIP['ViT-B-32'], 'vision_cfg': {**OPEN_CLIP['ViT-B-32']['vision_cfg'], 'pool_type': 'avg'}}, r'pool_type="avg" .* must be "tok"'),
    ],
)  # fmt: skip
def test_a_bad_model_file_is_one_line_naming_the_key(tmp_path, change, message):
  data = change(TINY_BPE)
  path = tmp_path / 'bad.json'
  path.write_text(data if isinstance(data, str) else json.dumps(data))
  with pytest.raises(ValueError, match=message) as error:
    models.get_config(str(path))
  assert str(error.value).startswith(f'model file {str(path)!r}') and '\n' not in str(error.value)


def test_the_train_cli_refuses_a_bad_model_file_before_writing(tmp_path):
  bad = tmp_path / 'bad.json'
  bad.write_text(json.dumps({**TINY_BPE, 'vision': {**TINY_BPE['vision'], 'heads': 3}}))
  out = subprocess.run(
      [sys.executable, '-m', 'scaling_vlm.train', f'--config={REPO}/configs/clip.py:tiny',
       f'--workdir={tmp_path / "run"}', f'--config.model.name={bad}'],
      capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert out.returncode == 2
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: model file '{bad}': tiny-bpe: vision width 32 is not divisible")
  assert 'Traceback' not in out.stderr and not (tmp_path / 'run').exists()


def test_numbers_under_a_zoo_name_must_be_the_zoos():
  config = presets.for_model('tiny-1')
  config.model.custom = custom.to_json(models.ZOO['tiny-1'])
  config_lib.validate(config)  # the same model: fine
  config.model.custom = custom.to_json(models.ZOO['tiny-2'])
  with pytest.raises(ValueError, match=r"another model than the zoo's 'tiny-1'; give it a name"):
    config_lib.validate(config)


@pytest.mark.slow
def test_a_tiny_model_with_the_clip_vocabulary_trains_on_bpe_captions(tmp_path):
  model_file = tmp_path / 'tiny-bpe.json'
  model_file.write_text(json.dumps(TINY_BPE))
  shards = write.write_shards(
      write.records_from('synthetic:64'), str(tmp_path / 'shards'), fmt='wds', shard_size=32
  )
  config = presets.for_model('tiny-1')
  config.model.name = str(model_file)
  config.data.source, config.data.shards = 'wds', ','.join(shards)
  config.data.tokenizer, config.data.bpe_path = 'clip_bpe', BPE
  config.train.global_batch, config.train.samples, config.train.warmup = 16, '64', '16'
  config.log.every_steps, config.log.tensorboard = 1, False
  workdir = str(tmp_path / 'run')
  trainer.train(config, workdir)

  losses = [row['train/loss'] for row in metrics.read(workdir)]
  assert len(losses) == 4 and np.all(np.isfinite(losses))
  # The run holds its model: the file can go, and evaluation rows still get params and FLOPs.
  model_file.unlink()
  run = run_lib.Run.load(workdir)
  assert run.config.model.name == 'tiny-bpe'
  assert run.model.text.vocab_size == 49408 and run.model.vision.patch_size == 16
  assert run.columns()['model'] == 'tiny-bpe'
  built = models.count_params(models.build(run.model))
  assert results.RunInfo(run).params == built > 49408 * 32
  assert run.gflops_per_sample == pytest.approx(flops.forward_gflops(run.model))
  # The file changed after the run started: another config, not a checkpoint that no longer fits.
  model_file.write_text(json.dumps({**TINY_BPE, 'embed_dim': 48}))
  config.model.name = str(model_file)
  with pytest.raises(ValueError, match=r'differs in: model.custom'):
    trainer.claim_config(config_lib.resolve_model(config), run_lib.Workdir(workdir))
  assert os.path.isfile(os.path.join(workdir, 'config.json'))
