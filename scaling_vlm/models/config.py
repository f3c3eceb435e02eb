"""Architecture description of one model: towers, sizes and numerics.

A `ModelConfig` is plain data. It names everything that changes the parameter tree or the
FLOPs of a model, plus the numerics switches (compute dtype, attention kernel, layer scan,
remat, selective-scan kernel) that do not. Validation happens here, before any array is built, so that a bad size
fails with a message that names the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from scaling_vlm.models import archs

DTYPES = ('float32', 'bfloat16')
ATTENTION_IMPLS = (None, 'xla', 'cudnn')
REMAT_POLICIES = ('none', 'full', 'dots')
POOLINGS = ('cls', 'mean')
# CLIMP's 2D cross-scan orders over the patch grid (VMamba's SS2D): row-major forward and
# backward, column-major forward and backward. The text tower scans 'forward' only (causal).
VISION_DIRECTIONS = ('row', 'row_reverse', 'col', 'col_reverse')
TEXT_DIRECTIONS = ('forward',)
# 'auto': step by step on CPUs (cache-friendly, several times faster there), log-depth
# associative scans on GPUs and TPUs, where a step-by-step loop would leave the device idle.
SCAN_IMPLS = ('auto', 'associative', 'sequential')
# How parameters start. 'open_clip': each tensor from the distribution the reference code
# gives it (open_clip for CLIP, the MaMMUT fork for MaMMUT); CLIMP, which has none, keeps its own.
# 'scaled': normal weights with residual outputs scaled down by depth and zero biases, which the
# tiny models learn faster from at the mini study's budget (experiments/mini_study/NOTES.md).
INITS = ('open_clip', 'scaled')


@dataclasses.dataclass(frozen=True)
class VisionConfig:
  width: int
  layers: int
  heads: int
  patch_size: int
  image_size: int = 224
  mlp_ratio: float = 4.0
  layer_scale_init: float | None = None  # LayerScale on both residual branches (M-16-alt).

  @property
  def grid(self) -> int:
    return self.image_size // self.patch_size

  @property
  def num_tokens(self) -> int:
    """Class token plus one token per patch."""
    return self.grid**2 + 1

  @property
  def mlp_width(self) -> int:
    return int(self.width * self.mlp_ratio)


@dataclasses.dataclass(frozen=True)
class TextConfig:
  width: int
  layers: int
  heads: int
  context_length: int = 77
  vocab_size: int = 49408
  mlp_ratio: float = 4.0

  # Token-id conventions shared by the OpenAI CLIP BPE and the synthetic tokenizer: the two
  # highest ids start and end a text, so CLIP can pool at `argmax(tokens)`; 0 pads.
  @property
  def sot_id(self) -> int:
    return self.vocab_size - 2

  @property
  def eot_id(self) -> int:
    return self.vocab_size - 1

  pad_id = 0

  @property
  def mlp_width(self) -> int:
    return int(self.width * self.mlp_ratio)


@dataclasses.dataclass(frozen=True)
class SSMConfig:
  """A Mamba-1 (S6) mixer, which CLIMP's towers use where CLIP has attention."""

  expand: int = 2  # inner width = expand x tower width
  state: int = 16  # N: state size per inner channel
  conv: int = 4  # depthwise conv kernel: causal, length `conv` (text); conv x conv (vision)
  dt_rank: int | None = None  # rank of the step-size projection; None: ceil(width / 16)
  directions: tuple[str, ...] = TEXT_DIRECTIONS
  # Numerics only (no parameter or FLOP changes): the scan kernel and its chunk length.
  scan_impl: str = 'auto'
  chunk: int = 64

  def rank(self, width: int) -> int:
    return self.dt_rank or math.ceil(width / 16)


# VMamba-v2's VSS block (SS2D mixer with expand 1, then an MLP) and Mamba-1's LM block.
VISION_SSM = SSMConfig(expand=1, conv=3, directions=VISION_DIRECTIONS)
TEXT_SSM = SSMConfig(expand=2, conv=4, directions=TEXT_DIRECTIONS)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """One zoo entry. `arch` picks the family (`spec`); the MaMMUT fields are ignored by CLIP,
  the SSM fields by everything but CLIMP (which also ignores `heads`)."""

  name: str
  arch: str  # a key of archs.ARCHS
  embed_dim: int
  vision: VisionConfig
  text: TextConfig
  # MaMMUT decoder: cross-attention after self-attention blocks 0, r, 2r, ...
  cross_attn_ratio: int = 2
  # Whether a self-attention block that is followed by cross-attention keeps its own MLP.
  mlp_before_cross_attn: bool = True
  init: str = 'open_clip'  # how the parameters start (INITS)
  init_logit_scale: float = math.log(1 / 0.07)
  init_logit_bias: float | None = None  # set for the sigmoid (SigLIP) loss
  # CLIMP's mixers; a tower's MLP follows its `mlp_ratio` (0: none, as in Mamba's LM blocks).
  vision_ssm: SSMConfig = VISION_SSM
  text_ssm: SSMConfig = TEXT_SSM
  # Numerics and implementation: these change neither the parameters nor the FLOPs.
  dtype: str = 'float32'  # compute dtype; parameters stay float32
  attention_impl: str | None = None  # None lets JAX pick (cuDNN flash attention on GPUs)
  scan_layers: bool = False
  remat: str = 'none'

  def __post_init__(self):
    check_choice('arch', self.arch, archs.ARCHS)
    check_choice('dtype', self.dtype, DTYPES)
    check_choice('attention_impl', self.attention_impl, ATTENTION_IMPLS)
    check_choice('remat', self.remat, REMAT_POLICIES)
    check_choice('init', self.init, INITS)
    v, t = self.vision, self.text
    # Sizes a zoo entry always has right, and a model defined by its numbers may not.
    sizes = {
        'embed_dim': self.embed_dim,
        **{f'vision.{k}': getattr(v, k) for k in ('width', 'layers', 'heads', 'patch_size')},
        'vision.image_size': v.image_size,
        **{f'text.{k}': getattr(t, k) for k in ('width', 'layers', 'heads', 'context_length')},
    }
    for key, value in sizes.items():
      if value < 1:
        raise ValueError(f'{self.name}: {key}={value} must be >= 1.')
    for key, value in (('vision.mlp_ratio', v.mlp_ratio), ('text.mlp_ratio', t.mlp_ratio)):
      if value < 0:
        raise ValueError(f'{self.name}: {key}={value} must be >= 0 (0: no MLP).')
    if v.image_size % v.patch_size:
      raise ValueError(
          f'{self.name}: image_size {v.image_size} is not divisible by patch_size '
          f'{v.patch_size}; use a multiple of {v.patch_size} '
          f'(e.g. {v.patch_size * max(1, v.image_size // v.patch_size)}).'
      )
    for tower, cfg in (('vision', v), ('text', t)):
      if cfg.width % cfg.heads:
        raise ValueError(
            f'{self.name}: {tower} width {cfg.width} is not divisible by '
            f'{tower} heads {cfg.heads}.'
        )
    if t.vocab_size < 3:
      raise ValueError(f'{self.name}: vocab_size {t.vocab_size} must be >= 3 (pad, SOT, EOT).')
    self.spec.check(self)

  @property
  def spec(self) -> archs.Arch:
    """What its family is: model class, FLOP counter, pooling, loss terms."""
    return archs.ARCHS[self.arch]

  @property
  def pooling(self) -> str:
    return self.spec.pooling

  def replace(self, **overrides) -> ModelConfig:
    """Returns a copy with top-level or `vision.x` / `text.x` / `vision_ssm.x` / `text_ssm.x`
    fields replaced."""
    groups = {
        'vision': VisionConfig,
        'text': TextConfig,
        'vision_ssm': SSMConfig,
        'text_ssm': SSMConfig,
    }
    top, nested = {}, {group: {} for group in groups}
    for key, value in overrides.items():
      group, _, field = key.rpartition('.')
      target = top if group == '' else nested.get(group)
      known = ModelConfig if group == '' else groups.get(group)
      if target is None or field not in {f.name for f in dataclasses.fields(known)}:
        allowed = sorted(
            [f.name for f in dataclasses.fields(ModelConfig)]
            + [f'{g}.{f.name}' for g, cls in groups.items() for f in dataclasses.fields(cls)]
        )
        raise ValueError(f'Unknown model field {key!r}; allowed: {", ".join(allowed)}.')
      target[field] = value
    for group, fields in nested.items():
      if fields:
        top[group] = dataclasses.replace(getattr(self, group), **fields)
    return dataclasses.replace(self, **top)


def check_choice(key: str, value, choices) -> None:
  if value not in choices:
    raise ValueError(f'{key}={value!r} is not allowed; choose one of {list(choices)}.')
