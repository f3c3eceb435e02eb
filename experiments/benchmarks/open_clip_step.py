"""open_clip's training step on the same model and batch, for a side-by-side with ours.

    python experiments/benchmarks/open_clip_step.py --model ViT-B-32 --batch 256
    python experiments/benchmarks/open_clip_step.py --model tiny-1 --batch 8   # a CPU check

Needs PyTorch and open_clip, which this project does not depend on (a separate environment
is fine: vs_open_clip.py takes `--torch-python`):
    pip install torch --index-url https://download.pytorch.org/whl/cu124
    pip install open_clip_torch
(or the CPU wheels, `.../whl/cpu`). No weights are downloaded (`pretrained=None`).

The step is open_clip's own (training/train.py): forward under bf16 autocast (`--precision
amp_bf16`, the default on GPUs), `ClipLoss`, backward, gradient clipping at 1.0, AdamW
(fused on CUDA; no decay on gains, biases and the logit scale) and the logit-scale clamp,
on device-resident random images and tokens. One line in the format of
train_throughput.py (perf_line.py), MFU from our zoo's training FLOPs of the same name.
Zoo names open_clip lacks (`tiny-*`) are registered from our zoo's sizes. MaMMUT is not in
open_clip (the paper trained it from a fork): those names are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import perf_line  # noqa: E402

INSTALL = (
    'open_clip_step.py needs PyTorch and open_clip (not project dependencies): '
    'pip install torch --index-url https://download.pytorch.org/whl/cu124 '
    '&& pip install open_clip_torch'
)


def zoo_config(name: str):
  """Our zoo entry of the same name, or None (FLOPs and tiny configs come from it)."""
  try:
    from scaling_vlm import models
  except ImportError:  # a PyTorch-only environment
    return None
  try:
    return models.get_config(name)
  except ValueError:
    return None


def register_tiny(open_clip, name: str) -> None:
  """An open_clip config with our zoo's sizes, for names open_clip does not know."""
  c = zoo_config(name)
  if c is None or c.arch != 'clip':
    raise SystemExit(f'error: open_clip has no model {name!r} and our zoo no CLIP of that name.')
  v, t = c.vision, c.text
  cfg = {
      'embed_dim': c.embed_dim,
      'vision_cfg': {
          'image_size': v.image_size,
          'layers': v.layers,
          'width': v.width,
          'head_width': v.width // v.heads,
          'patch_size': v.patch_size,
          'mlp_ratio': v.mlp_ratio,
      },
      'text_cfg': {
          'context_length': t.context_length,
          'vocab_size': t.vocab_size,
          'width': t.width,
          'heads': t.heads,
          'layers': t.layers,
          'mlp_ratio': t.mlp_ratio,
      },
  }
  folder = tempfile.mkdtemp()
  with open(os.path.join(folder, f'{name}.json'), 'w') as f:
    json.dump(cfg, f)
  open_clip.add_model_config(folder)


def optimizer(torch, model, device):
  # open_clip's split: no weight decay on gains, biases, the logit scale (ndim < 2).
  decay = [p for p in model.parameters() if p.ndim >= 2]
  no_decay = [p for p in model.parameters() if p.ndim < 2]
  groups = [{'params': no_decay, 'weight_decay': 0.0}, {'params': decay, 'weight_decay': 0.2}]
  fused = device.type == 'cuda'
  return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, fused=fused)


def measure(args) -> dict:
  try:
    import open_clip
    import torch
  except ImportError:
    raise SystemExit(f'error: {INSTALL}')
  if args.model.startswith('mammut'):
    return {'model': args.model, 'skipped': 'open_clip_has_no_MaMMUT'}
  if args.model not in open_clip.list_models():
    register_tiny(open_clip, args.model)
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  precision = args.precision or ('amp_bf16' if device.type == 'cuda' else 'fp32')
  model = open_clip.create_model(args.model, pretrained=None, device=device, output_dict=True)
  if args.grad_checkpointing:
    model.set_grad_checkpointing(True)
  model.train()
  step_model = torch.compile(model) if args.compile else model
  loss_fn = open_clip.ClipLoss()
  opt = optimizer(torch, model, device)
  size = model.visual.image_size
  size = size if isinstance(size, int) else size[0]
  context, vocab = model.context_length, model.vocab_size
  images = torch.randn(args.batch, 3, size, size, device=device)
  tokens = torch.randint(1, vocab - 2, (args.batch, context), device=device)

  def step():
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == 'amp_bf16'):
      loss = loss_fn(**step_model(images, tokens))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
      model.logit_scale.clamp_(0, math.log(100))
    return loss

  def sync():
    if device.type == 'cuda':
      torch.cuda.synchronize()

  start = time.perf_counter()
  for _ in range(2):  # warm-up (and torch.compile's compile)
    step()
  sync()
  warmup_s = time.perf_counter() - start
  timings = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    for _ in range(args.steps):
      step()
    sync()
    timings.append((time.perf_counter() - start) / args.steps)
  step_s = statistics.median(timings)
  if device.type == 'cuda':
    kind = torch.cuda.get_device_name(device)
    peak_gb, mem_source = torch.cuda.max_memory_allocated(device) / 1e9, 'torch_max_allocated'
  else:
    kind = 'cpu'
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    mem_source = 'host_rss'
  peak = args.peak_tflops * 1e12 if args.peak_tflops else _peak_flops(kind)
  zoo = zoo_config(args.model)
  samples_per_s = args.batch / step_s
  train_flops = _train_flops(zoo)
  return {
      'device': kind,
      'peak_tflops': round(peak / 1e12, 1) if peak else 'n/a',
      'model': args.model,
      'batch': args.batch,
      'dtype': 'bfloat16' if precision == 'amp_bf16' else 'float32',
      'attention': 'torch_sdpa',
      'remat': 'full' if args.grad_checkpointing else 'none',
      'scan': 'n/a',
      'samples_per_s': round(samples_per_s, 2),
      'step_ms': round(step_s * 1e3, 2),
      'mfu': perf_line.mfu(train_flops, samples_per_s, peak) if train_flops else 'n/a',
      'peak_mem_gb': round(peak_gb, 3),
      'mem_source': mem_source,
      'framework': f'open_clip-{open_clip.__version__}/torch-{torch.__version__}',
      'compile': args.compile,
      'warmup_s': round(warmup_s, 1),
      'step_ms_spread': f'{min(timings) * 1e3:.1f}-{max(timings) * 1e3:.1f}',
  }


def _peak_flops(kind: str):
  try:
    from scaling_vlm.flops import PEAK_BF16_FLOPS
  except ImportError:
    return None
  return PEAK_BF16_FLOPS.get(kind)


def _train_flops(zoo):
  if zoo is None:
    return None
  from scaling_vlm import flops

  return flops.train_flops(zoo)


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--model', required=True, help='an open_clip / zoo name, e.g. ViT-B-32')
  parser.add_argument('--batch', type=int, required=True)
  parser.add_argument('--precision', choices=['amp_bf16', 'fp32'], help='default: amp_bf16 on GPU')
  parser.add_argument('--grad-checkpointing', action='store_true')
  parser.add_argument('--compile', action='store_true', help='torch.compile the model')
  parser.add_argument('--steps', type=int, default=5, help='steps per timing')
  parser.add_argument('--repeats', type=int, default=5, help='timings; the median is printed')
  parser.add_argument('--peak-tflops', type=float, help='for a device kind flops.py lacks')
  args = parser.parse_args()
  row = measure(args)
  if 'skipped' in row:
    print(' '.join(f'{k}={v}' for k, v in row.items()), flush=True)
    return
  print(perf_line.format_line(row), flush=True)


if __name__ == '__main__':
  main()
