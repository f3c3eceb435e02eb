"""One spec per architecture: what the rest of the code may ask about a model family.

Training, evaluation, FLOP counting and the zoo ask the spec (`config.spec`), never the
family's name: a new captioning model sets `captions=True` and is trained with the caption
loss, logs it and is evaluated on captioning, with no name check to update anywhere.

This module is plain Python (no JAX): a run's plan and compute come from it without starting
a backend. The Flax class is named by import path and imported when a model is built.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Callable

from scaling_vlm import flops

if TYPE_CHECKING:
  from scaling_vlm.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Arch:
  """A model family."""

  name: str
  title: str  # how reports and figures name it
  model: str  # 'module:Class' of its Flax model
  counts: Callable[[ModelConfig], flops.Counts]  # multiply-adds of one forward pass
  # A captioning head: the caption loss is a term of its training loss (and is logged), and
  # it is evaluated on captioning.
  captions: bool
  pooling: str  # image embedding: 'cls' (class token) or 'mean' (all tokens)
  attention: bool  # towers have attention heads (the zoo prints width/layers/heads)
  check: Callable[[ModelConfig], None] = lambda config: None  # family-specific size rules

  @property
  def loss_terms(self) -> tuple[str, ...]:
    return ('contrastive', 'caption') if self.captions else ('contrastive',)

  @property
  def model_class(self) -> type:
    module, _, name = self.model.partition(':')
    return getattr(importlib.import_module(module), name)

  @property
  def prefix(self) -> str:
    """Of its zoo names: open_clip names CLIP models bare and prefixes the others."""
    return '' if self.name == 'clip' else f'{self.name}_'

  def zoo_name(self, base: str) -> str:
    """The zoo name of this family's model of CLIP size `base` ('tiny-2' -> 'mammut_tiny-2')."""
    return f'{self.prefix}{base}'


def _check_mammut(config: ModelConfig) -> None:
  t = config.text
  if config.cross_attn_ratio < 1 or t.layers % config.cross_attn_ratio:
    raise ValueError(
        f'{config.name}: text layers {t.layers} must be a multiple of cross_attn_ratio '
        f'{config.cross_attn_ratio} (>= 1).'
    )
  if config.embed_dim != t.width:
    raise ValueError(
        f'{config.name}: MaMMUT has no text projection, so embed_dim '
        f'{config.embed_dim} must equal the text width {t.width}.'
    )


def _check_climp(config: ModelConfig) -> None:
  from scaling_vlm.models import config as config_lib  # imported here: config imports this module

  for tower, ssm, allowed in (
      ('vision_ssm', config.vision_ssm, config_lib.VISION_DIRECTIONS),
      ('text_ssm', config.text_ssm, config_lib.TEXT_DIRECTIONS),
  ):
    config_lib.check_choice(f'{tower}.scan_impl', ssm.scan_impl, config_lib.SCAN_IMPLS)
    for field in ('expand', 'state', 'conv', 'chunk'):
      if getattr(ssm, field) < 1:
        raise ValueError(f'{config.name}: {tower}.{field}={getattr(ssm, field)} must be >= 1.')
    directions = tuple(ssm.directions)
    if not directions or len(set(directions)) != len(directions):
      raise ValueError(
          f'{config.name}: {tower}.directions={directions!r} must be a non-empty tuple of '
          f'distinct names from {list(allowed)}.'
      )
    for direction in directions:
      if direction not in allowed:
        hint = ' (the text tower is causal)' if tower == 'text_ssm' else ''
        raise ValueError(
            f'{config.name}: scan direction {direction!r} is not allowed in {tower}{hint}; '
            f'choose from {list(allowed)}.'
        )


ARCHS: dict[str, Arch] = {
    arch.name: arch
    for arch in (
        Arch(
            'clip',
            'CLIP',
            'scaling_vlm.models.clip:CLIP',
            flops.clip_counts,
            captions=False,
            pooling='cls',
            attention=True,
        ),
        Arch(
            'mammut',
            'MaMMUT',
            'scaling_vlm.models.mammut:MaMMUT',
            flops.mammut_counts,
            captions=True,
            pooling='mean',
            attention=True,
            check=_check_mammut,
        ),
        Arch(
            'climp',
            'CLIMP',
            'scaling_vlm.models.climp:CLIMP',
            flops.climp_counts,
            captions=False,
            pooling='mean',
            attention=False,
            check=_check_climp,
        ),
    )
}


def get(name: str) -> Arch:
  if name not in ARCHS:
    raise ValueError(f'arch={name!r} is not allowed; choose one of {list(ARCHS)}.')
  return ARCHS[name]
