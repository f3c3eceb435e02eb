"""open_clip's state-dict layout against ours: which tensor is which, and how it is reshaped.

The architectures are the same (fp32 embeddings and caption logits agree to < 1e-5 on the same
weights), so the bridge is a renaming and reshaping of tensors, written once as rules that run
both ways. Our side is the unscanned parameter tree flattened to dotted paths
(`visual.blocks.layers.0.attn.qkv.kernel`); theirs is open_clip's for CLIP, and the
LAION-AI/open_clip_mammut fork's for MaMMUT (decoder under `text.`, self-attention blocks
`text.resblocks.N`, cross-attention blocks `text.cross_attn.K`, LM head `text.text_projection`,
vision-to-text map `map_viz2txt_kv`). Torch linear weights are (out, in); ours are (in, out).
Plain numpy: no JAX, no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from scaling_vlm.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Rule:
  """One tensor of theirs as one or more of ours (a cross-attention `in_proj` is our query and
  our key-value projections)."""

  theirs: str
  ours: tuple[str, ...]
  to_ours: Callable[[np.ndarray], tuple[np.ndarray, ...]]
  to_theirs: Callable[..., np.ndarray]


def _same(theirs: str, ours: str) -> list[Rule]:
  return [Rule(theirs, (ours,), lambda a: (a,), lambda a: a)]


def _linear_weight(theirs: str, ours: str) -> list[Rule]:
  return [Rule(theirs, (ours,), lambda a: (a.T,), lambda a: a.T)]


def _layer_norm(theirs: str, ours: str) -> list[Rule]:
  return _same(f'{theirs}.weight', f'{ours}.scale') + _same(f'{theirs}.bias', f'{ours}.bias')


def _attention(theirs: str, ours: str, width: int, heads: int, cross: bool) -> list[Rule]:
  """nn.MultiheadAttention: `in_proj_weight` (3W, W) rows q, k, v (heads contiguous) -> our
  (W, 3, heads, head_dim) kernel; a cross-attention's rows [0:W] are our q, [W:3W] our kv."""
  h, d = heads, width // heads
  kernel = lambda a: a.reshape(3, h, d, width).transpose(3, 0, 1, 2)
  unkernel = lambda k: k.transpose(1, 2, 3, 0).reshape(3 * width, width)
  bias = lambda a: a.reshape(3, h, d)
  unbias = lambda b: b.reshape(3 * width)
  weight, in_bias = f'{theirs}.in_proj_weight', f'{theirs}.in_proj_bias'
  if cross:
    split = lambda x: (x[..., :1, :, :], x[..., 1:, :, :]) if x.ndim == 4 else (x[:1], x[1:])
    rules = [
        Rule(
            weight,
            (f'{ours}.q.kernel', f'{ours}.kv.kernel'),
            lambda a: split(kernel(a)),
            lambda q, kv: unkernel(np.concatenate([q, kv], axis=1)),
        ),
        Rule(
            in_bias,
            (f'{ours}.q.bias', f'{ours}.kv.bias'),
            lambda a: split(bias(a)),
            lambda q, kv: unbias(np.concatenate([q, kv], axis=0)),
        ),
    ]
  else:
    rules = [
        Rule(weight, (f'{ours}.qkv.kernel',), lambda a: (kernel(a),), unkernel),
        Rule(in_bias, (f'{ours}.qkv.bias',), lambda a: (bias(a),), unbias),
    ]
  return rules + [
      # out_proj (W, heads * head_dim) -> our (heads, head_dim, W).
      Rule(
          f'{theirs}.out_proj.weight',
          (f'{ours}.out.kernel',),
          lambda a: (a.T.reshape(h, d, width),),
          lambda k: k.reshape(h * d, width).T,
      ),
      *_same(f'{theirs}.out_proj.bias', f'{ours}.out.bias'),
  ]


def _block(
    theirs: str,
    ours: str,
    width: int,
    heads: int,
    *,
    mlp: bool = True,
    cross: bool = False,
    layer_scale: bool = False,
) -> list[Rule]:
  rules = _layer_norm(f'{theirs}.ln_1', f'{ours}.ln_1')
  if cross:
    rules += _layer_norm(f'{theirs}.ln_1_kv', f'{ours}.ln_1_kv')
  rules += _attention(f'{theirs}.attn', f'{ours}.attn', width, heads, cross)
  if layer_scale:
    rules += _same(f'{theirs}.ls_1.gamma', f'{ours}.ls_1.gamma')
  if mlp:
    rules += _layer_norm(f'{theirs}.ln_2', f'{ours}.ln_2')
    rules += _linear_weight(f'{theirs}.mlp.c_fc.weight', f'{ours}.mlp.fc.kernel')
    rules += _same(f'{theirs}.mlp.c_fc.bias', f'{ours}.mlp.fc.bias')
    rules += _linear_weight(f'{theirs}.mlp.c_proj.weight', f'{ours}.mlp.proj.kernel')
    rules += _same(f'{theirs}.mlp.c_proj.bias', f'{ours}.mlp.proj.bias')
    if layer_scale:
      rules += _same(f'{theirs}.ls_2.gamma', f'{ours}.ls_2.gamma')
  return rules


def _vision(config: ModelConfig) -> list[Rule]:
  v = config.vision
  p, w = v.patch_size, v.width
  rules = [
      # conv1 (W, 3, p, p), no bias -> our (p * p * 3, W) over row-major (y, x, channel) patches.
      Rule(
          'visual.conv1.weight',
          ('visual.patch_embed.kernel',),
          lambda a: (a.transpose(2, 3, 1, 0).reshape(p * p * 3, w),),
          lambda k: k.reshape(p, p, 3, w).transpose(3, 2, 0, 1),
      ),
      *_same('visual.class_embedding', 'visual.class_embedding'),
      *_same('visual.positional_embedding', 'visual.positional_embedding'),
      *_layer_norm('visual.ln_pre', 'visual.ln_pre'),
      *_layer_norm('visual.ln_post', 'visual.ln_post'),
      *_same('visual.proj', 'visual.proj'),
  ]
  for i in range(v.layers):
    rules += _block(
        f'visual.transformer.resblocks.{i}',
        f'visual.blocks.layers.{i}',
        w,
        v.heads,
        layer_scale=v.layer_scale_init is not None,
    )
  return rules


def _clip_text(config: ModelConfig) -> list[Rule]:
  t = config.text
  rules = [
      *_same('token_embedding.weight', 'text.token_embedding.embedding'),
      *_same('positional_embedding', 'text.positional_embedding'),
      *_layer_norm('ln_final', 'text.ln_final'),
      *_same('text_projection', 'text.text_projection'),
  ]
  for i in range(t.layers):
    rules += _block(f'transformer.resblocks.{i}', f'text.blocks.layers.{i}', t.width, t.heads)
  return rules


def _mammut_decoder(config: ModelConfig) -> list[Rule]:
  t, r = config.text, config.cross_attn_ratio
  rules = [
      *_same('text.token_embedding.weight', 'decoder.token_embedding.embedding'),
      *_same('text.positional_embedding', 'decoder.positional_embedding'),
      *_layer_norm('text.ln_final', 'decoder.ln_final'),
      *_same('text.text_projection', 'decoder.lm_head.kernel'),  # (W, vocab) both ways
      *_same('map_viz2txt_kv', 'vision_to_text'),
  ]
  for layer in range(t.layers):
    unit, i = divmod(layer, r)
    ours = f'decoder.units.layers.{unit}'
    mlp = i > 0 or config.mlp_before_cross_attn
    rules += _block(f'text.resblocks.{layer}', f'{ours}.self_attn.{i}', t.width, t.heads, mlp=mlp)
    if i == 0:
      rules += _block(f'text.cross_attn.{unit}', f'{ours}.cross_attn', t.width, t.heads, cross=True)
  return rules


# Per architecture, the rules of what is not the vision tower (an architecture the bridge does
# not know has no entry: CLIMP has no open_clip counterpart).
_TOWERS = {'clip': _clip_text, 'mammut': _mammut_decoder}


def rules(config: ModelConfig) -> list[Rule]:
  """Every tensor of `config`'s open_clip state dict, with where it goes in ours."""
  if config.arch not in _TOWERS:
    raise ValueError(
        f'{config.name}: open_clip has no {config.spec.title} models; the bridge knows '
        f'{sorted(_TOWERS)}.'
    )
  out = _vision(config) + _TOWERS[config.arch](config)
  out += _same('logit_scale', 'logit_scale.scale')
  if config.init_logit_bias is not None:
    out += _same('logit_bias', 'logit_scale.bias')
  return out


def to_theirs(flat: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
  """Our flat parameters -> open_clip's state dict. Consumes `flat` (each of ours is dropped
  once converted), so a large model is held about once."""
  return {
      rule.theirs: np.asarray(rule.to_theirs(*(flat.pop(name) for name in rule.ours)), order='C')
      for rule in rules(config)
  }
