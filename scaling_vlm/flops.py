"""FLOPs per sample: the paper's compute axis, and the training FLOPs that MFU is based on.

**Paper convention** (`forward_flops`; README, 'The model zoo'): forward FLOPs of one sample
at the model's image size and context length, 2 FLOPs per multiply-add, counting linear layers,
the patch embedding and the projections, and *not* the attention-score products (QKᵀ, AV),
LayerNorm, softmax, GELU, biases or embedding lookups. MaMMUT counts both decoder passes,
each with its LM head (the contrastive pass over all positions, the captioning pass over
context − 1), plus the vision→text map. A run's compute is this × samples seen.

**Training FLOPs** (`train_flops`): what a training step really executes per sample, for MFU:
the same linear layers *plus* the attention-score products (counted in full, as XLA
computes them, also where a causal mask zeroes half), times 3 for forward + backward.
MaMMUT's contrastive pass executes no LM head, so training FLOPs leave it out.

**CLIMP** (`climp_counts`) has no attention. Both conventions count its linear layers (input
and output projections, the per-direction Δ/B/C and step-size projections, the depthwise
convolutions, MLPs, patch embedding and projections) *and* the selective scan's own
multiply-adds, which are to it what the attention products are to a transformer: per token,
direction, inner channel and state element, 3 (decay ⊙ state + drive, (Δx)·B, and C·h). The
exp of Δ·A, softplus, SiLU, the gate, the D skip, norms and biases are elementwise and not
counted, as GELU and LayerNorm are not. Training FLOPs are again 3 x these: the associative
scan's extra combine work and the backward recomputation of chunks are implementation cost,
not model FLOPs, so they lower the MFU rather than inflate it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the architecture specs (models/archs.py) import this module
  from scaling_vlm.models.config import ModelConfig, SSMConfig


def _block_macs(width: int, mlp_width: int, mlp: bool = True) -> int:
  """Per-token multiply-adds of one self-attention block's linear layers."""
  return 4 * width * width + (2 * width * mlp_width if mlp else 0)


@dataclasses.dataclass(frozen=True)
class Counts:
  """Multiply-adds of one forward pass, split by what the two conventions treat differently."""

  linear: int = 0  # counted by both conventions
  attention: int = 0  # QKᵀ and AV: training FLOPs only
  unexecuted: int = 0  # MaMMUT's contrastive-pass LM head: paper convention only
  scan: int = 0  # CLIMP's selective-scan multiply-adds: counted by both conventions

  def __add__(self, other: Counts) -> Counts:
    return Counts(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


def vision_counts(config: ModelConfig) -> Counts:
  v = config.vision
  n = v.num_tokens
  patches = (v.num_tokens - 1) * v.patch_size**2 * 3 * v.width
  blocks = v.layers * n * _block_macs(v.width, v.mlp_width)
  projection = v.width * config.embed_dim  # applied once, to the pooled token
  return Counts(linear=patches + blocks + projection, attention=v.layers * 2 * n * n * v.width)


def clip_text_counts(config: ModelConfig) -> Counts:
  t = config.text
  n = t.context_length
  return Counts(
      linear=t.layers * n * _block_macs(t.width, t.mlp_width) + t.width * config.embed_dim,
      attention=t.layers * 2 * n * n * t.width,
  )


def mammut_decoder_counts(config: ModelConfig) -> Counts:
  t, v = config.text, config.vision
  w, r = t.width, config.cross_attn_ratio
  units = t.layers // r
  # Per unit, r self-attention blocks; the first loses its MLP in some sizes.
  self_macs = units * sum(
      _block_macs(w, t.mlp_width, mlp=i > 0 or config.mlp_before_cross_attn) for i in range(r)
  )
  lm_head = w * t.vocab_size
  image_tokens = v.num_tokens
  # Contrastive pass: all positions, no mask, no cross-attention.
  n = t.context_length
  contrastive = Counts(
      linear=n * self_macs, attention=t.layers * 2 * n * n * w, unexecuted=n * lm_head
  )
  # Captioning pass: context - 1 positions; cross-attention queries/outputs and MLP per token,
  # keys and values over every image token.
  n = t.context_length - 1
  cross_per_token = units * (2 * w * w + 2 * w * t.mlp_width)
  cross_kv = units * image_tokens * 2 * w * w
  captioning = Counts(
      linear=n * (self_macs + cross_per_token + lm_head) + cross_kv,
      attention=t.layers * 2 * n * n * w + units * 2 * n * image_tokens * w,
  )
  vision_to_text = Counts(linear=image_tokens * v.width * w)
  return contrastive + captioning + vision_to_text


def _mamba_counts(width: int, mlp_width: int, ssm: SSMConfig, tokens: int, conv: int) -> Counts:
  """One Mamba block over `tokens` tokens; `conv` taps per channel of its depthwise conv."""
  inner, rank, n = ssm.expand * width, ssm.rank(width), ssm.state
  per_direction = inner * (rank + 2 * n) + rank * inner  # x_proj (Δ, B, C), dt_proj
  per_token = (
      width * 2 * inner  # in_proj to (u, z)
      + conv * inner
      + len(ssm.directions) * per_direction
      + inner * width  # out_proj
      + 2 * width * mlp_width
  )
  return Counts(linear=tokens * per_token, scan=tokens * len(ssm.directions) * 3 * inner * n)


def climp_counts(config: ModelConfig) -> Counts:
  v, t = config.vision, config.text
  patches = v.grid**2
  vision = Counts(linear=patches * v.patch_size**2 * 3 * v.width + v.width * config.embed_dim)
  block = _mamba_counts(v.width, v.mlp_width, config.vision_ssm, patches, config.vision_ssm.conv**2)
  text = Counts(linear=t.width * config.embed_dim)
  text_block = _mamba_counts(
      t.width, t.mlp_width, config.text_ssm, t.context_length, config.text_ssm.conv
  )
  for _ in range(v.layers):
    vision += block
  for _ in range(t.layers):
    text += text_block
  return vision + text


def clip_counts(config: ModelConfig) -> Counts:
  return vision_counts(config) + clip_text_counts(config)


def mammut_counts(config: ModelConfig) -> Counts:
  return vision_counts(config) + mammut_decoder_counts(config)


def forward_counts(config: ModelConfig) -> Counts:
  """One forward pass, counted by the model's architecture (`ModelConfig.spec`)."""
  return config.spec.counts(config)


def forward_flops(config: ModelConfig) -> int:
  """Forward FLOPs per sample in the paper's convention."""
  c = forward_counts(config)
  return 2 * (c.linear + c.scan + c.unexecuted)


def train_flops(config: ModelConfig) -> int:
  """FLOPs a training step executes per sample (forward + backward, attention included)."""
  c = forward_counts(config)
  return 3 * 2 * (c.linear + c.attention + c.scan)


def forward_gflops(config: ModelConfig) -> float:
  return forward_flops(config) / 1e9


# Dense bf16 peak FLOP/s per chip by `device_kind` (vendor datasheets), for MFU.
PEAK_BF16_FLOPS = {
    'NVIDIA H200': 989e12,
    'NVIDIA H100 80GB HBM3': 989e12,
    'NVIDIA H100 PCIe': 756e12,
    'NVIDIA A100-SXM4-80GB': 312e12,
    'NVIDIA A100-SXM4-40GB': 312e12,
    'NVIDIA A100 80GB PCIe': 312e12,
    'TPU v4': 275e12,
    'TPU v5 lite': 197e12,
    'TPU v5e': 197e12,
    'TPU v5p': 459e12,
    'TPU v6 lite': 918e12,
    'TPU v6e': 918e12,
}


def peak_flops(device) -> float | None:
  """The device's dense bf16 peak FLOP/s, or None where unknown (CPUs)."""
  return PEAK_BF16_FLOPS.get(device.device_kind)
