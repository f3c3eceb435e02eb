"""The run config: every key a run reads, with the paper's recipe as defaults, and its checks.

`configs/<family>.py:PRESET` files start from `base_config()` and set what differs. Sizes
that are durations (`train.samples`, `train.warmup`, `cooldown.start`, ...) are written in
samples seen and accept `1.28e9`, `3.072M`, `500k` or plain integers; `parse_count` reads
them. `validate` rejects a bad value before anything heavy starts, naming the key and what
is allowed.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import importlib.util
import json
import math
import os
import re

import ml_collections

from scaling_vlm import models
from scaling_vlm.models import config as model_config
from scaling_vlm.models import custom as custom_models, registry

SUFFIXES = {'': 1, 'k': 1e3, 'K': 1e3, 'M': 1e6, 'B': 1e9, 'G': 1e9, 'T': 1e12}


def base_config() -> ml_collections.ConfigDict:
  """Every key a run reads, at its default. What each key means is in DOCS, below; what it
  allows in RANGES, CHOICES or FORMATS (`allowed`); `--print_config` prints all of it."""
  c = ml_collections.ConfigDict()
  c.model = dict(
      name='ViT-B-32',
      custom='',
      dtype='bfloat16',
      attention_impl='auto',
      scan_layers=False,
      remat='none',
      init='open_clip',
  )
  c.data = dict(
      source='synthetic',
      shards='',
      cache_dir='',
      tokenizer='word',
      bpe_path='',
      num_workers=0,
      read_threads=4,
      strict=False,
      max_bad_fraction=0.01,
      seed=0,
      caption_noise=0.0,
  )
  c.train = dict(samples='1.28e9', global_batch=32768, micro_batches=1, warmup='13M', seed=0)
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
      flatten=False,
  )
  c.cooldown = dict(parent='', start='', shape='linear')
  c.init = dict(checkpoint='')
  c.loss = dict(contrastive='softmax', contrastive_weight=1.0, caption_weight=2.0)
  c.mesh = dict(data=-1, fsdp=1, tensor=1)
  c.checkpoint = dict(
      milestones='geometric:8',
      latest_every_steps=1000,
      async_save=True,
      milestone_state='params',
      branch_points='auto',
  )
  c.eval = dict(tasks='', every='milestones', synthetic_size=1000, batch_size=256, background=True)
  c.log = dict(
      every_steps=50,
      tensorboard=True,
      wandb=False,
      wandb_project='scaling-vlm',
      wandb_entity='',
      wandb_mode='auto',
  )
  c.xla = dict(gpu_flags='none')
  return c


# One line per key: what it means. A test holds this to base_config's keys, so a new key
# comes with its line, and `--print_config` never shows a key nobody explained.
DOCS = {
    'model.name': 'The model: a zoo name (python -m scaling_vlm.zoo) or a model JSON file.',
    'model.custom': (
        "The model's numbers as JSON (our schema or open_clip's), named model.name; a run "
        "started with model.name=FILE.json holds its file's here."
    ),
    'model.dtype': 'Compute dtype; parameters and optimiser state stay float32.',
    'model.attention_impl': (
        'Attention kernel: auto lets JAX pick; cudnn is flash attention on NVIDIA GPUs (bf16).'
    ),
    'model.scan_layers': 'Scan identical layers: the same model, compiled once per tower.',
    'model.remat': 'Recompute activations in the backward pass: none, blocks, or all but dots.',
    'model.init': (
        'How parameters start: open_clip (each tensor as the reference code starts it) or '
        'scaled (normal, residuals scaled with depth).'
    ),
    'data.source': 'Training pairs: the synthetic world (no files), img2dataset tars, ArrayRecord.',
    'data.shards': 'The files to read (wds, arrayrecord): a list, brace pattern, glob or folder.',
    'data.cache_dir': 'Where wds shard indices go when the shard folder is read-only.',
    'data.tokenizer': "word: the synthetic world's words; clip_bpe: OpenAI CLIP's BPE (49408 ids).",
    'data.bpe_path': "clip_bpe's bpe_simple_vocab_16e6.txt.gz; empty: an installed open_clip's.",
    'data.num_workers': 'grain worker processes per host; 0 decodes in the main process.',
    'data.read_threads': 'Decoding threads per process (JPEG decoding releases the GIL).',
    'data.strict': 'Stop at the first bad record instead of skipping and counting it.',
    'data.max_bad_fraction': 'Stop when more than this fraction of the records read are bad.',
    'data.seed': 'Seed of the data order (and of the synthetic world).',
    'data.caption_noise': (
        "Synthetic world only: the share of captions that describe another scene (a noisier"
        " pool; the results table's pretrain_dataset says 'synthetic-noise0.5')."
    ),
    'train.samples': 'Samples seen by the end of the run.',
    'train.global_batch': 'Samples per step, over all devices.',
    'train.micro_batches': "Gradient accumulation: micro-batches per update, which is the batch's.",
    'train.warmup': 'Samples of linear learning-rate warmup.',
    'train.seed': 'Seed of the parameter initialisation.',
    'optim.lr': 'Peak learning rate (AdamW).',
    'optim.b1': "AdamW's first-moment decay.",
    'optim.b2': "AdamW's second-moment decay.",
    'optim.eps': "AdamW's epsilon.",
    'optim.weight_decay': 'Decoupled weight decay; not on gains, biases, tokens, logit scale.',
    'optim.grad_clip': 'Clip the global gradient norm to this.',
    'optim.schedule': (
        'Learning rate after warmup: cosine, constant, or a cooldown branch of a constant run.'
    ),
    'optim.lr_floor': 'Learning rate at the end of a cosine or cooldown schedule.',
    'optim.flatten': "Adam's moments as one flat buffer (one fused update); unsharded models only.",
    'cooldown.parent': 'Workdir of the constant-LR run a cooldown branches from.',
    'cooldown.start': "Samples seen at the branch point: one of the parent's checkpoints.",
    'cooldown.shape': 'How a cooldown decays the learning rate to optim.lr_floor.',
    'init.checkpoint': (
        'Start from these parameters with a fresh optimiser: a run (DIR or DIR:STEP) or an '
        'open_clip file.'
    ),
    'loss.contrastive': 'Contrastive loss: softmax (CLIP InfoNCE) or sigmoid (SigLIP).',
    'loss.contrastive_weight': 'Weight of the contrastive term.',
    'loss.caption_weight': 'Weight of the caption cross-entropy (captioning models: MaMMUT).',
    'mesh.data': 'Devices on the data-parallel axis; -1: all that fsdp and tensor leave.',
    'mesh.fsdp': 'Devices that shard parameters and optimiser state (and the batch).',
    'mesh.tensor': 'Devices that shard weight matrices (tensor parallelism).',
    'checkpoint.milestones': 'Checkpoints kept for good, at these samples seen (law points).',
    'checkpoint.latest_every_steps': 'Steps between rolling checkpoints (the two latest are kept).',
    'checkpoint.async_save': 'Write checkpoints in the background while training goes on.',
    'checkpoint.milestone_state': (
        'What a milestone keeps: the parameters (in bf16 with params_bf16) or the full train '
        'state; branch points and the rolling checkpoints always keep the full state.'
    ),
    'checkpoint.branch_points': (
        'Milestones a cooldown may branch from, kept with the full state: auto (every milestone'
        ' of a const run, none otherwise), none, or counts.'
    ),
    'eval.tasks': (
        "Tasks scored during training into WORKDIR/results.csv, as evaluate's --tasks, "
        'comma-separated; empty: none.'
    ),
    'eval.every': "When: 'milestones' (at each milestone checkpoint) or every this many samples.",
    'eval.synthetic_size': "Images per synthetic task, as evaluate's --synthetic_size.",
    'eval.batch_size': "Evaluation batch, as evaluate's --batch_size.",
    'eval.background': (
        'Evaluate a copy of the parameters in a thread while training goes on (False: between '
        'steps, without the copy).'
    ),
    'log.every_steps': 'Steps between metrics rows and progress lines.',
    'log.tensorboard': 'Also write TensorBoard events under WORKDIR/tensorboard (tensorboardX).',
    'log.wandb': 'Also log to Weights & Biases (pip install wandb).',
    'log.wandb_project': 'W&B project of the run (its name there is the workdir\'s).',
    'log.wandb_entity': 'W&B user or team; empty: your default entity.',
    'log.wandb_mode': (
        'auto: WANDB_MODE, else online; offline: kept under WORKDIR/wandb for `wandb sync`.'
    ),
    'xla.gpu_flags': 'XLA_FLAGS preset for GPUs, set before JAX starts (train/xla_flags.py).',
}

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


def value_at(config, key: str):
  """`config['a']['b']` for the dotted key 'a.b'."""
  for part in key.split('.'):
    config = config[part]
  return config


def _choice(config, key: str, names) -> None:
  value = value_at(config, key)
  if value not in names:
    raise ValueError(f'{key}={value!r} is not allowed; choose one of {list(names)}.')


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
    ('train.seed', lambda v: v >= 0, '>= 0'),
    ('data.num_workers', lambda v: v >= 0, '>= 0'),
    ('data.read_threads', lambda v: v >= 0, '>= 0'),
    ('data.max_bad_fraction', lambda v: 0 <= v <= 1, 'in [0, 1]'),
    ('data.seed', lambda v: v >= 0, '>= 0'),
    ('data.caption_noise', lambda v: 0 <= v < 1, 'in [0, 1)'),
    ('checkpoint.latest_every_steps', lambda v: v >= 1, '>= 1 (steps)'),
    ('eval.synthetic_size', lambda v: v >= 1, '>= 1'),
    ('eval.batch_size', lambda v: v >= 1, '>= 1'),
    ('log.every_steps', lambda v: v >= 1, '>= 1 (steps)'),
    ('mesh.data', lambda v: v == -1 or v >= 1, '-1 (every device) or >= 1'),
    ('mesh.fsdp', lambda v: v >= 1, '>= 1'),
    ('mesh.tensor', lambda v: v >= 1, '>= 1'),
)

# 'auto' stands for None (JAX picks the kernel), which a ConfigDict string cannot hold.
ATTENTION_IMPLS = ('auto', *model_config.ATTENTION_IMPLS[1:])

# Keys that name one of a set: key -> (module, attribute) of the registry that builds what the
# name stands for, so the registry is the one list of its names. Read lazily (`choices`): the
# data, schedule and loss registries bring JAX and grain, which a sweep's plan does without.
CHOICES = {
    'model.dtype': ('scaling_vlm.models.config', 'DTYPES'),
    'model.attention_impl': ('scaling_vlm.train.config', 'ATTENTION_IMPLS'),
    'model.remat': ('scaling_vlm.models.config', 'REMAT_POLICIES'),
    'model.init': ('scaling_vlm.models.config', 'INITS'),
    'xla.gpu_flags': ('scaling_vlm.train.xla_flags', 'PRESETS'),
    'log.wandb_mode': ('scaling_vlm.train.wandb_log', 'MODES'),
    'checkpoint.milestone_state': ('scaling_vlm.train.storage', 'MILESTONE_STATES'),
    'data.source': ('scaling_vlm.data.sources', 'SOURCES'),
    'data.tokenizer': ('scaling_vlm.data.sources', 'TOKENIZERS'),
    'optim.schedule': ('scaling_vlm.train.schedules', 'SCHEDULES'),
    'cooldown.shape': ('scaling_vlm.train.schedules', 'COOLDOWN_SHAPES'),
    'loss.contrastive': ('scaling_vlm.train.losses', 'CONTRASTIVE_TERMS'),
}

# What the free-form keys (neither numeric, boolean nor a choice) take.
FORMATS = {
    'model.name': 'a zoo name, or a path ending in .json',
    'model.custom': "'' or a JSON object (README, Custom models)",
    'data.shards': "'' or paths, brace patterns, globs or folders, comma-separated",
    'data.cache_dir': "'' (beside the shards) or a folder",
    'data.bpe_path': "'' or a file",
    'train.samples': 'a count: 1280000, 1.28e9, 3.072M, 500k (at least one global batch)',
    'train.warmup': 'a count, shorter than train.samples',
    'cooldown.parent': "'' or a run's workdir",
    'cooldown.start': "'' or a count, a milestone of the parent",
    'init.checkpoint': "'', DIR, DIR:STEP, or an open_clip .safetensors/.pt file",
    'checkpoint.milestones': "'geometric:N' (N per decade of samples) or counts '1M,2.5M'",
    'checkpoint.branch_points': "'auto', 'none', or counts '10M,20M', each a milestone",
    'eval.tasks': "'' or task specs 'synthetic/colour,zeroshot:NAME=FOLDER' (evaluate --help)",
    'eval.every': "'milestones' or a count of samples: 1M, 500k (at least one global batch)",
    'log.wandb_project': 'a W&B project name',
    'log.wandb_entity': "'' or a W&B user or team",
}


def choices(key: str) -> list:
  """The names `key` allows, from its registry."""
  module, attribute = CHOICES[key]
  return list(getattr(importlib.import_module(module), attribute))


def allowed(key: str) -> str:
  """What `key` allows, as `--print_config` shows it."""
  for name, _, text in RANGES:
    if name == key:
      return text
  if key in CHOICES:
    return ' | '.join(str(c) for c in choices(key))
  if isinstance(value_at(base_config(), key), bool):
    return 'True | False'
  return FORMATS[key]


def validate(config: ml_collections.ConfigDict) -> None:
  """Rejects what cannot run, naming the key and what is allowed. Ranges, counts and the step
  plan come first: they need no JAX, so the common mistakes are reported at once."""
  for key, allowed, text in RANGES:
    value = value_at(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not allowed(value):
      raise ValueError(f'{key}={value!r} is not allowed; it must be {text}.')
  for key in ('train.samples', 'train.warmup'):
    parse_count(value_at(config, key), key)
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
  from scaling_vlm.train import storage  # pylint: disable=import-outside-toplevel  # likewise

  plan = run.RunPlan.from_config(config)  # steps, warmup and milestones that can be
  storage.branch_steps(config, plan)  # branch points that are milestones
  eval_every(config, plan)
  # A zoo name (unknown names list close matches), a model file, or model.custom's numbers.
  registry.lookup(config.model.name, config.model.custom)
  # Registries that bring JAX come last in CHOICES: the common mistakes are reported first.
  for key in CHOICES:
    _choice(config, key, choices(key))
  _check_performance_switches(config)
  if eval_specs(config):  # their syntax; the evaluation modules bring JAX, so last
    from scaling_vlm.evaluate import tasks  # pylint: disable=import-outside-toplevel

    try:
      tasks.make_tasks(eval_specs(config), 224, 1, captions=True)  # nothing is loaded
    except ValueError as error:
      raise ValueError(f'eval.tasks={config.eval.tasks!r}: {error}') from None


def eval_specs(config: ml_collections.ConfigDict) -> list[str]:
  """`eval.tasks` as the task specs of `python -m scaling_vlm.evaluate --tasks`; [] = none."""
  tasks = config.get('eval', {}).get('tasks', '')  # runs saved before the key: none
  return [spec.strip() for spec in tasks.split(',') if spec.strip()]


def eval_every(config: ml_collections.ConfigDict, plan) -> int | None:
  """`eval.every` in samples, None for 'milestones'; ValueError for less than one step of
  `plan`."""
  every = str(config.eval.every).strip()
  if every == 'milestones':
    return None
  samples = parse_count(every, 'eval.every')
  if samples < plan.global_batch:
    raise ValueError(
        f'eval.every={every!r} is less than one global batch ({plan.global_batch} samples); '
        "give more samples, or 'milestones'."
    )
  return samples


def check_inputs(config: ml_collections.ConfigDict) -> None:
  """What the run reads must exist here: its shards, its BPE file, a cooldown's parent run,
  the checkpoint it starts from. The trainer checks this before it writes or builds anything;
  `validate` does not, because a sweep is planned on a machine that may not see the data."""
  problems = missing_inputs(config)
  if problems:
    raise ValueError(' '.join(problems))


def missing_inputs(config: ml_collections.ConfigDict, parent: bool = True) -> list[str]:
  """One sentence per input of the run that is not here (none: all are). `parent=False` leaves
  out the cooldown parent: a sweep's branch names a run of the same sweep, made before it."""
  from scaling_vlm.data import shards, sources  # pylint: disable=import-outside-toplevel

  problems = []
  if config.data.source != 'synthetic':
    try:
      shards.check_shards(config.data.shards)
    except ValueError as error:
      problems.append(str(error))
  # An empty bpe_path means the file of an installed open_clip: here, not where `validate` runs.
  if config.data.tokenizer == 'clip_bpe':
    try:
      if not os.path.isfile(bpe_path := sources.clip_bpe_path(config.data)):
        problems.append(f'data.bpe_path={bpe_path!r} does not exist.')
    except ValueError as error:
      problems.append(str(error))
  init = config.init.checkpoint
  if init and not os.path.exists(init_source(init)[0]):
    problems.append(f'init.checkpoint={init!r} does not exist.')
  for spec in eval_specs(config):  # zeroshot:NAME=FOLDER, retrieval:..., tfds:...=FOLDER
    folder = spec.partition('=')[2]
    if folder and not os.path.exists(folder):
      problems.append(f'eval.tasks: {spec!r} names {folder!r}, which does not exist.')
  folder = config.cooldown.parent
  if (
      parent
      and config.optim.schedule == 'cooldown'
      and not os.path.isdir(os.path.join(folder, 'checkpoints'))
  ):
    problems.append(
        f'cooldown.parent={folder!r} does not exist (no {os.path.join(folder, "checkpoints")}): '
        'name the workdir of the constant-LR run to branch from.'
    )
  return problems


def resolve_model(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`model.name=FILE.json` written out: a copy whose `model.custom` holds the file's model (its
  numbers, as one canonical JSON line) and `model.name` its name. A run's config.json then
  holds the model itself, so evaluating, exporting or resuming it needs no file, and a file
  edited after the start is a config conflict, not a checkpoint that no longer fits. Any other
  config comes back as it is."""
  name = config.model.name
  if not name.endswith('.json'):
    return config
  registry.lookup(name, config.model.custom)  # refuses a file *and* numbers
  model = models.get_config(name)
  resolved = copy.deepcopy(config)
  resolved.model.name, resolved.model.custom = model.name, custom_models.to_json(model)
  return resolved


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
  known = set(flat_keys(config))
  for arg in argv:
    match = re.match(r'--config\.([\w.]+)=', arg)
    if match and match.group(1) not in known:
      raise ValueError(_unknown_key(match.group(1), known))


def _unknown_key(key: str, known: set[str]) -> str:
  close = _abbreviations(key, known)
  close += [k for k in difflib.get_close_matches(key, known, n=3) if k not in close]
  hint = f' Did you mean {", ".join(close)}?' if close else ''
  return (
      f'Unknown config key {key!r}.{hint} Known keys: {", ".join(sorted(known))} '
      '(--print_config describes each).'
  )


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
  known = set(flat_keys(config))
  for key, value in (overrides or {}).items():
    if key not in known:
      raise ValueError(_unknown_key(key, known))
    section, _, leaf = key.rpartition('.')
    parent = value_at(config, section) if section else config
    parent[leaf] = _coerce(key, parent[leaf], value)
  return resolve_model(config)


def _abbreviations(key: str, known) -> list[str]:
  """Known keys that abbreviate `key`'s last part by its initials: `optim.learning_rate` ->
  `optim.lr`, which spelling similarity alone ranks below longer keys."""
  section, _, leaf = key.rpartition('.')
  initials = ''.join(word[:1] for word in leaf.split('_'))
  return [f'{section}.{initials}'] if len(initials) > 1 and f'{section}.{initials}' in known else []


def flat_keys(config, prefix: str = ''):
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from flat_keys(value, f'{prefix}{key}.')
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
