"""Architecture description of one model: towers, sizes and numerics.

A `ModelConfig` is plain data. It names everything that changes the parameter tree or the
FLOPs of a model, plus the numerics switches (compute dtype, attention kernel, layer scan,
remat) that do not. Validation happens here, before any array is built, so that a bad size
fails with a message that names the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

ARCHS = ('clip', 'mammut')
DTYPES = ('float32', 'bfloat16')
ATTENTION_IMPLS = (None, 'xla', 'cudnn')
REMAT_POLICIES = ('none', 'full', 'dots')
POOLINGS = ('cls', 'mean')


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
class ModelConfig:
  """One zoo entry. `arch` picks the family; the MaMMUT fields are ignored by CLIP."""

  name: str
  arch: Literal['clip', 'mammut']
  embed_dim: int
  vision: VisionConfig
  text: TextConfig
  # MaMMUT decoder: cross-attention after self-attention blocks 0, r, 2r, ...
  cross_attn_ratio: int = 2
  # Whether a self-attention block that is followed by cross-attention keeps its own MLP.
  mlp_before_cross_attn: bool = True
  init_logit_scale: float = math.log(1 / 0.07)
  init_logit_bias: float | None = None  # set for the sigmoid (SigLIP) loss
  # Numerics and implementation: these change neither the parameters nor the FLOPs.
  dtype: str = 'float32'  # compute dtype; parameters stay float32
  attention_impl: str | None = None  # None lets JAX pick (cuDNN flash attention on GPUs)
  scan_layers: bool = False
  remat: str = 'none'

  def __post_init__(self):
    _check_choice('arch', self.arch, ARCHS)
    _check_choice('dtype', self.dtype, DTYPES)
    _check_choice('attention_impl', self.attention_impl, ATTENTION_IMPLS)
    _check_choice('remat', self.remat, REMAT_POLICIES)
    v, t = self.vision, self.text
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
    if self.arch == 'mammut':
      if self.cross_attn_ratio < 1 or t.layers % self.cross_attn_ratio:
        raise ValueError(
            f'{self.name}: text layers {t.layers} must be a multiple of cross_attn_ratio '
            f'{self.cross_attn_ratio} (>= 1).'
        )
      if self.embed_dim != t.width:
        raise ValueError(
            f'{self.name}: MaMMUT has no text projection, so embed_dim '
            f'{self.embed_dim} must equal the text width {t.width}.'
        )

  @property
  def pooling(self) -> str:
    """Image pooling: CLIP reads the class token, MaMMUT averages all tokens."""
    return 'cls' if self.arch == 'clip' else 'mean'

  def replace(self, **overrides) -> ModelConfig:
    """Returns a copy with top-level or `vision.x` / `text.x` fields replaced."""
    top, vision, text = {}, {}, {}
    for key, value in overrides.items():
      group, _, field = key.rpartition('.')
      target = {'': top, 'vision': vision, 'text': text}.get(group)
      known = {'': ModelConfig, 'vision': VisionConfig, 'text': TextConfig}.get(group)
      if target is None or field not in {f.name for f in dataclasses.fields(known)}:
        allowed = sorted(
            [f.name for f in dataclasses.fields(ModelConfig)]
            + [f'vision.{f.name}' for f in dataclasses.fields(VisionConfig)]
            + [f'text.{f.name}' for f in dataclasses.fields(TextConfig)]
        )
        raise ValueError(f'Unknown model field {key!r}; allowed: {", ".join(allowed)}.')
      target[field] = value
    return dataclasses.replace(
        self,
        vision=dataclasses.replace(self.vision, **vision),
        text=dataclasses.replace(self.text, **text),
        **top,
    )


def _check_choice(key: str, value, choices) -> None:
  if value not in choices:
    raise ValueError(f'{key}={value!r} is not allowed; choose one of {list(choices)}.')
