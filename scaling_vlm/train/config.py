"""The run config: every key a run reads, with the paper's recipe as defaults, and its checks.

`configs/<family>.py:PRESET` files start from `base_config()` and set what differs. Sizes
that are durations (`train.samples`, `train.warmup`, `cooldown.start`, ...) are written in
samples seen and accept `1.28e9`, `3.072M`, `500k` or plain integers; `parse_count` reads
them. `validate` rejects a bad value before anything heavy starts, naming the key and what
is allowed.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import os
import re

import ml_collections

from scaling_vlm import models
from scaling_vlm.models import config as model_config
from scaling_vlm.train import xla_flags

SUFFIXES = {'': 1, 'k': 1e3, 'K': 1e3, 'M': 1e6, 'B': 1e9, 'G': 1e9, 'T': 1e12}


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = dict(
      name='ViT-B-32',
      dtype='bfloat16',
      attention_impl='auto',
      scan_layers=False,
      remat='none',
      init='open_clip',  # open_clip: each tensor as the reference code initialises it
  )
  c.data = dict(
      source='synthetic',  # synthetic | wds | arrayrecord
      shards='',  # list, brace pattern or directory (wds, arrayrecord)
      cache_dir='',  # where wds indices go when the shard folder is read-only
      tokenizer='word',  # word (synthetic world) | clip_bpe
      bpe_path='',  # bpe_simple_vocab_16e6.txt.gz for clip_bpe; empty: an installed open_clip's
      num_workers=0,  # grain worker processes per host; 0 decodes in the main process
      read_threads=4,  # decoding threads per process (JPEG decoding releases the GIL)
      strict=False,  # stop at the first bad record instead of skipping and counting
      max_bad_fraction=0.01,
      seed=0,
  )
  c.train = dict(
      samples='1.28e9',  # samples seen by the end of the run
      global_batch=32768,
      micro_batches=1,  # gradient accumulation; the update equals the full batch's
      warmup='13M',  # samples
      seed=0,
  )
  # The paper's recipe: AdamW (0.9, 0.95), weight decay 0.2, clip 1.0, warmup then cosine.
  c.optim = dict(
      lr=1e-3,
      b1=0.9,
      b2=0.95,
      eps=1e-8,
      weight_decay=0.2,
      grad_clip=1.0,
      schedule='cosine',
      lr_floor=0.0,
      # Adam's moments as one flat buffer (optax.flatten): one fused update instead of one
      # per parameter; single-device or data-parallel meshes only (see validate).
      flatten=False,
  )
  c.cooldown = dict(
      parent='',  # workdir of the constant-LR run to branch from
      start='',  # samples seen at the branch point: one of the parent's checkpoints
      shape='linear',  # linear | 1-sqrt
  )
  # Start from another model's parameters (with a fresh optimiser): a run's workdir, DIR or
  # DIR:STEP (a trained or an imported run, see scaling_vlm.convert), or an open_clip file.
  c.init = dict(checkpoint='')
  c.loss = dict(contrastive='softmax', contrastive_weight=1.0, caption_weight=2.0)
  c.mesh = dict(data=-1, fsdp=1, tensor=1)
  c.checkpoint = dict(
      milestones='geometric:8',  # 'geometric:N' (N per decade of samples) or a list '1M,2M'
      latest_every_steps=1000,  # the rolling checkpoint that resumption starts from
      async_save=True,
  )
  c.log = dict(every_steps=50, tensorboard=True)
  # XLA_FLAGS presets (scaling_vlm/train/xla_flags.py), applied by the CLI before JAX starts.
  c.xla = dict(gpu_flags='none')
  return c


def parse_count(value, key: str) -> int:
  """'1.28e9', '3.072M', '500k', 1280000 -> an integer count."""
  text = str(value).strip()
  match = re.fullmatch(r'([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKMBGT]?)', text)
  if not match:
    raise ValueError(f'{key}={value!r} is not a count; write e.g. 1280000, 1.28e9, 3.072M or 500k.')
  count = float(match.group(1)) * SUFFIXES[match.group(2)]
  if count != math.floor(count) or count < 0:
    raise ValueError(f'{key}={value!r} must be a non-negative whole number of samples.')
  return int(count)


def _get(config, key: str):
  """`config['a']['b']` for the dotted key 'a.b'."""
  for part in key.split('.'):
    config = config[part]
  return config


def _choice(config, key: str, choices) -> None:
  value = _get(config, key)
  if value not in choices:
    raise ValueError(f'{key}={value!r} is not allowed; choose one of {list(choices)}.')


# The allowed range of every numeric key: (key, test, what the message says is allowed).
RANGES = (
    ('optim.lr', lambda v: v > 0, '> 0'),
    ('optim.lr_floor', lambda v: v >= 0, '>= 0'),
    ('optim.b1', lambda v: 0 <= v < 1, 'in [0, 1)'),
    ('optim.b2', lambda v: 0 <= v < 1, 'in [0, 1)'),
    ('optim.eps', lambda v: v > 0, '> 0'),
    ('optim.weight_decay', lambda v: v >= 0, '>= 0'),
    ('optim.grad_clip', lambda v: v > 0, '> 0'),
    ('loss.contrastive_weight', lambda v: v >= 0, '>= 0'),
    ('loss.caption_weight', lambda v: v >= 0, '>= 0'),
    ('train.global_batch', lambda v: v >= 1, '>= 1'),
    ('train.micro_batches', lambda v: v >= 1, '>= 1'),
    ('data.num_workers', lambda v: v >= 0, '>= 0'),
    ('data.read_threads', lambda v: v >= 0, '>= 0'),
    ('data.max_bad_fraction', lambda v: 0 <= v <= 1, 'in [0, 1]'),
    ('checkpoint.latest_every_steps', lambda v: v >= 1, '>= 1 (steps)'),
    ('log.every_steps', lambda v: v >= 1, '>= 1 (steps)'),
    ('mesh.data', lambda v: v == -1 or v >= 1, '-1 (every device) or >= 1'),
    ('mesh.fsdp', lambda v: v >= 1, '>= 1'),
    ('mesh.tensor', lambda v: v >= 1, '>= 1'),
)


def validate(config: ml_collections.ConfigDict) -> None:
  """Rejects what cannot run, naming the key and what is allowed. Ranges, counts and the step
  plan come first: they need no JAX, so the common mistakes are reported at once."""
  for key, allowed, text in RANGES:
    value = _get(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not allowed(value):
      raise ValueError(f'{key}={value!r} is not allowed; it must be {text}.')
  for key in ('train.samples', 'train.warmup'):
    parse_count(_get(config, key), key)
  if config.optim.lr_floor > config.optim.lr:
    raise ValueError(f'optim.lr_floor={config.optim.lr_floor} is above optim.lr={config.optim.lr}.')
  batch, micro = config.train.global_batch, config.train.micro_batches
  if batch % micro:
    raise ValueError(
        f'train.global_batch={batch} must be a positive multiple of '
        f'train.micro_batches={micro}.'
    )
  if config.data.source != 'synthetic' and not config.data.shards:
    raise ValueError(
        f'data.source={config.data.source!r} needs data.shards (a list, a brace '
        "pattern like 'data/{00000..00099}.tar' or a directory)."
    )
  if config.optim.schedule == 'cooldown' and not (config.cooldown.parent and config.cooldown.start):
    raise ValueError(
        "optim.schedule=cooldown needs cooldown.parent (the constant run's "
        'workdir) and cooldown.start (samples seen at the branch point).'
    )
  from scaling_vlm import run  # pylint: disable=import-outside-toplevel  # run imports this

  run.RunPlan.from_config(config)  # steps, warmup and milestones that can be
  models.get_config(config.model.name)  # unknown names list close matches
  _choice(config, 'model.dtype', model_config.DTYPES)
  # 'auto' stands for None (JAX picks the kernel), which a ConfigDict string cannot hold.
  _choice(config, 'model.attention_impl', ['auto', *model_config.ATTENTION_IMPLS[1:]])
  _choice(config, 'model.remat', model_config.REMAT_POLICIES)
  _choice(config, 'model.init', model_config.INITS)
  _choice(config, 'xla.gpu_flags', xla_flags.PRESETS)
  _check_performance_switches(config)
  # The remaining choices are the keys of the registries that build each part. Imported here,
  # not at the top, because they bring JAX and grain: the schema above, and a run's plan
  # (scaling_vlm.run), are read without them.
  from scaling_vlm.data import sources  # pylint: disable=import-outside-toplevel
  from scaling_vlm.train import losses, schedules  # pylint: disable=import-outside-toplevel

  _choice(config, 'data.source', sources.SOURCES)
  _choice(config, 'data.tokenizer', sources.TOKENIZERS)
  _choice(config, 'optim.schedule', schedules.SCHEDULES)
  _choice(config, 'cooldown.shape', schedules.COOLDOWN_SHAPES)
  _choice(config, 'loss.contrastive', losses.CONTRASTIVE_TERMS)


def check_inputs(config: ml_collections.ConfigDict) -> None:
  """What the run reads must exist here: its shards, its BPE file, a cooldown's parent run,
  the checkpoint it starts from. The trainer checks this before it writes or builds anything;
  `validate` does not, because a sweep is planned on a machine that may not see the data."""
  from scaling_vlm.data import shards, sources  # pylint: disable=import-outside-toplevel

  if config.data.source != 'synthetic':
    shards.check_shards(config.data.shards)
  # An empty bpe_path means the file of an installed open_clip: here, not where `validate` runs.
  if config.data.tokenizer == 'clip_bpe':
    if not os.path.isfile(bpe_path := sources.clip_bpe_path(config.data)):
      raise ValueError(f'data.bpe_path={bpe_path!r} does not exist.')
  init = config.init.checkpoint
  if init and not os.path.exists(init_source(init)[0]):
    raise ValueError(f'init.checkpoint={init!r} does not exist.')
  parent = config.cooldown.parent
  if config.optim.schedule == 'cooldown' and not os.path.isdir(os.path.join(parent, 'checkpoints')):
    raise ValueError(
        f'cooldown.parent={parent!r} does not exist (no {os.path.join(parent, "checkpoints")}): '
        'name the workdir of the constant-LR run to branch from.'
    )


def init_source(spec: str) -> tuple[str, int | None]:
  """`init.checkpoint` as (path, step): an open_clip file or a run's DIR (step None: its
  latest checkpoint), or DIR:STEP."""
  path, colon, step = spec.rpartition(':')
  return (path, int(step)) if colon and step.isdigit() else (spec, None)


def _check_performance_switches(config: ml_collections.ConfigDict) -> None:
  if not isinstance(config.optim.flatten, bool):
    raise ValueError(f'optim.flatten={config.optim.flatten!r} must be True or False.')
  if config.optim.flatten and (config.mesh.fsdp != 1 or config.mesh.tensor != 1):
    # The flat buffer has no per-parameter layout: it would be replicated on every device.
    raise ValueError(
        f'optim.flatten=True needs unsharded parameters, but mesh.fsdp={config.mesh.fsdp} '
        f'and mesh.tensor={config.mesh.tensor}; set both to 1 or optim.flatten=False.'
    )
  if config.model.attention_impl == 'cudnn' and config.model.dtype != 'bfloat16':
    raise ValueError(
        f"model.attention_impl='cudnn' runs in bfloat16 only, but model.dtype="
        f"{config.model.dtype!r}; set model.dtype='bfloat16' or model.attention_impl='auto'."
    )


def check_devices(config: ml_collections.ConfigDict, platform: str) -> None:
  """Switches that need a particular accelerator, checked once the devices are known."""
  if config.model.attention_impl == 'cudnn' and platform != 'gpu':
    raise ValueError(
        f"model.attention_impl='cudnn' (cuDNN flash attention) needs NVIDIA GPUs, but this "
        f"run's devices are {platform!r}; use 'auto' or 'xla'."
    )


def check_batch_fits_mesh(config: ml_collections.ConfigDict, mesh) -> None:
  """Each micro-batch must split evenly over the data-parallel shards (data x fsdp)."""
  rows = config.train.global_batch // config.train.micro_batches
  shards = mesh.shape['data'] * mesh.shape['fsdp']
  if rows % shards:
    raise ValueError(
        f'train.global_batch={config.train.global_batch} / train.micro_batches='
        f'{config.train.micro_batches} = {rows} rows is not divisible by the {shards} '
        f'data-parallel shards (mesh data x fsdp = {mesh.shape["data"]} x {mesh.shape["fsdp"]}).'
    )


def check_override_keys(config: ml_collections.ConfigDict, argv: list[str]) -> None:
  """`--config.a.b=v` for a key the config does not have: an error with the close matches
  (ml_collections would only raise a bare AttributeError)."""
  known = set(_flat_keys(config))
  for arg in argv:
    match = re.match(r'--config\.([\w.]+)=', arg)
    if match and match.group(1) not in known:
      raise ValueError(_unknown_key(match.group(1), known))


def _unknown_key(key: str, known: set[str]) -> str:
  close = _abbreviations(key, known)
  close += [k for k in difflib.get_close_matches(key, known, n=3) if k not in close]
  hint = f' Did you mean {", ".join(close)}?' if close else ''
  return f'Unknown config key {key!r}.{hint} Known keys: {", ".join(sorted(known))}.'


def format_override(value) -> str:
  """A value as `--config.key=VALUE` writes it on a command line."""
  if isinstance(value, bool):
    return str(value)
  if isinstance(value, float) and value.is_integer() and abs(value) >= 1e3:
    return str(int(value))  # 1.28e9 -> '1280000000', which counts and floats both read
  if isinstance(value, (str, int, float)):
    return str(value)
  raise ValueError(
      f'override value {value!r} is a {type(value).__name__}; use str, int, float or bool.'
  )


def _coerce(key: str, current, value):
  """`value` as the type of the key's default, read as the command line would read it."""
  text = format_override(value)
  try:
    if isinstance(current, bool):
      if text not in ('True', 'False', 'true', 'false'):
        raise ValueError('not a boolean')
      return text.lower() == 'true'
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
  except ValueError:
    raise ValueError(
        f'{key}={value!r}: expected {type(current).__name__}, as its default {current!r}.'
    ) from None
  return text


def build_config(spec: str, overrides: dict | None = None) -> ml_collections.ConfigDict:
  """The config `--config=SPEC --config.k=v ...` stands for, built without a command line:
  the file's preset with dotted-key overrides, each read as the flag would read it. An
  unknown key is an error that lists the close matches."""
  config = load_config_file(spec)
  known = set(_flat_keys(config))
  for key, value in (overrides or {}).items():
    if key not in known:
      raise ValueError(_unknown_key(key, known))
    section, _, leaf = key.rpartition('.')
    parent = _get(config, section) if section else config
    parent[leaf] = _coerce(key, parent[leaf], value)
  return config


def _abbreviations(key: str, known) -> list[str]:
  """Known keys that abbreviate `key`'s last part by its initials: `optim.learning_rate` ->
  `optim.lr`, which spelling similarity alone ranks below longer keys."""
  section, _, leaf = key.rpartition('.')
  initials = ''.join(word[:1] for word in leaf.split('_'))
  return [f'{section}.{initials}'] if len(initials) > 1 and f'{section}.{initials}' in known else []


def _flat_keys(config, prefix: str = ''):
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from _flat_keys(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}'


def changed_keys(saved: dict, resolved: dict) -> list[str]:
  """Dotted keys where a run's saved config (its config.json) differs from `resolved`. A key
  the saved config lacks counts only when `resolved` moves it off its default, so that keys
  added to the code later do not stop older runs from resuming."""
  defaults = json.loads(base_config().to_json_best_effort())
  return sorted(
      key
      for key in _diff(saved, resolved)
      if not (_lookup(saved, key) is _MISSING and _lookup(resolved, key) == _lookup(defaults, key))
  )


_MISSING = object()


def _lookup(tree: dict, key: str):
  for part in key.split('.'):
    if not isinstance(tree, dict) or part not in tree:
      return _MISSING
    tree = tree[part]
  return tree


def _diff(a: dict, b: dict, prefix: str = ''):
  for key in set(a) | set(b):
    if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
      yield from _diff(a[key], b[key], f'{prefix}{key}.')
    elif a.get(key) != b.get(key):
      yield f'{prefix}{key}'


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """`path/to/family.py[:preset]` -> the config its `get_config(preset)` returns."""
  path, _, preset = spec.partition(':')
  if not os.path.exists(path):
    raise ValueError(f'config file {path!r} does not exist (from --config={spec}).')
  module_spec = importlib.util.spec_from_file_location('run_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset) if preset else module.get_config()
