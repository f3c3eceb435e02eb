"""The start-up summary: what a run will do, said before it builds, opens and compiles anything,
then its data as opened, then 'compiling' and how long that took."""

import logging

import pytest

from configs import presets
from scaling_vlm import flops, models, run as run_lib, sharding
from scaling_vlm.data import write
from scaling_vlm.train import summary, trainer


def test_the_plan_names_batches_per_device_and_where_things_go():
  config = presets.for_model('mammut_tiny-2')
  config.train.global_batch, config.train.micro_batches = 64, 2
  config.train.samples, config.train.warmup = '6400', '640'
  config.checkpoint.milestones = '640,1280,2560,3200,4480,5120,6400'
  config.log.wandb, config.log.wandb_mode = True, 'offline'
  config.log.tensorboard = False
  run = run_lib.Run(config, '/runs/m2')
  lines = summary.plan(config, run, sharding.make_mesh(data=2, fsdp=4))
  params = models.count_params(models.build(run.model))
  assert lines[0] == (
      f'run /runs/m2: MaMMUT mammut_tiny-2, {params / 1e6:.2f}M parameters, '
      f'{flops.forward_gflops(run.model):.4g} GFLOPs/sample, float32 compute'
  )
  assert lines[1] == 'devices: 8 x cpu (cpu), 1 process; mesh data=2 fsdp=4 tensor=1'
  # 64 rows, 2 micro-batches of 32, each split over data x fsdp = 8 shards.
  assert lines[2] == 'batch: 64 global, 4 per device x 2 micro-batches (8 data-parallel shards)'
  assert lines[3].startswith('steps: 100 (6.4k samples, warmup 10); cosine schedule, peak lr')
  assert lines[4] == 'milestones: 7 at 640, 1.28k, 2.56k, ..., 5.12k, 6.4k samples'
  assert lines[5].startswith('checkpoints: /runs/m2/checkpoints (')
  assert lines[6] == 'metrics: /runs/m2/metrics.jsonl, W&B project scaling-vlm (offline)'


@pytest.mark.slow
def test_a_run_says_what_it_will_do_before_its_first_step(tmp_path, caplog):
  shards = write.write_shards(
      write.records_from('synthetic:48'), str(tmp_path / 'shards'), fmt='wds', shard_size=16
  )
  config = presets.for_model('tiny-1')
  config.data.source = 'wds'
  config.data.shards = ','.join([*shards, str(tmp_path / 'shards' / 'lost.tar')])
  config.train.global_batch, config.train.samples, config.train.warmup = 16, '64', '16'
  config.checkpoint.milestones = '32,64'
  config.log.every_steps, config.log.tensorboard = 1, False
  workdir = str(tmp_path / 'run')
  with caplog.at_level(logging.INFO, logger='scaling_vlm'):
    trainer.train(config, workdir)
  said = [r.getMessage() for r in caplog.records if r.name.startswith('scaling_vlm')]

  plan = next(i for i, m in enumerate(said) if m.startswith(f'run {workdir}: '))
  lines = said[plan].splitlines()
  params = models.count_params(models.build('tiny-1'))
  assert lines[0].startswith(f'run {workdir}: CLIP tiny-1, {params / 1e6:.2f}M parameters')
  assert lines[1] == 'devices: 8 x cpu (cpu), 1 process; mesh data=8 fsdp=1 tensor=1'
  assert lines[2] == 'batch: 16 global, 2 per device (8 data-parallel shards)'
  assert lines[4] == 'milestones: 2 at 32, 64 samples'
  assert lines[6] == f'metrics: {workdir}/metrics.jsonl'
  # Then the data as opened, 'compiling', its time, and only then the first step.
  assert lines[-1] == 'building the train state and opening the data...'
  data_line = 'data: wds, 4 shards (1 missing), 48 records, tokenizer word (ready in '
  data = next(i for i, m in enumerate(said) if m.startswith(data_line))
  compiling = said.index('compiling the train step...')
  compiled = next(i for i, m in enumerate(said) if m.startswith('compiled in '))
  first = next(i for i, m in enumerate(said) if m.startswith('step 1 |'))
  assert plan < data < compiling < compiled < first
  assert float(said[compiled].split()[2]) > 0
