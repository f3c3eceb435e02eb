"""XLA flag presets for GPUs (`xla.gpu_flags`), written into XLA_FLAGS before JAX starts.

XLA reads XLA_FLAGS once, when the first backend initialises; setting it later does nothing.
So `python -m scaling_vlm.train` applies the preset first thing in `main`, before
`jax.distributed` and before anything touches a device, and the benchmarks set it in the
environment of their measuring subprocesses.

The flag names come from JAX's "GPU performance tips" (docs/gpu_performance_tips.md) and
NVIDIA JAX-Toolbox's GPU performance page. XLA on CPUs and TPUs parses these flags and
ignores them; it rejects names it does not know, which a test checks for every preset. Which
preset is fastest is measured, not assumed: `experiments/benchmarks/train_throughput.py
--xla-flags none performance` A/Bs them on one GPU.
"""

from __future__ import annotations

import os
import sys

_LATENCY_HIDING = ('--xla_gpu_enable_latency_hiding_scheduler=true',)
PRESETS: dict[str, tuple[str, ...]] = {
    'none': (),
    # Overlaps asynchronous collectives with compute (multi-GPU data parallelism).
    'latency_hiding': _LATENCY_HIDING,
    # JAX's recommended pair: the above, and Triton GEMMs wherever Triton supports them.
    'performance': _LATENCY_HIDING + ('--xla_gpu_triton_gemm_any=true',),
    # JAX-Toolbox's FSDP additions: pipelined parameter all-gathers and gradient
    # reduce-scatters, and double-buffered (scanned) layer loops.
    'fsdp': (
        _LATENCY_HIDING
        + (
            '--xla_gpu_triton_gemm_any=true',
            '--xla_gpu_enable_pipelined_all_gather=true',
            '--xla_gpu_enable_pipelined_reduce_scatter=true',
            '--xla_gpu_enable_while_loop_double_buffering=true',
        )
    ),
}


def check(preset: str) -> None:
  if preset not in PRESETS:
    raise ValueError(f'xla.gpu_flags={preset!r} is not allowed; choose one of {list(PRESETS)}.')


def _name(flag: str) -> str:
  return flag.split('=', 1)[0]


def merged(preset: str, current: str) -> str:
  """`current` XLA_FLAGS plus the preset's flags; a flag the user already set keeps the
  user's value."""
  check(preset)
  flags = current.split()
  given = {_name(f) for f in flags}
  return ' '.join(flags + [f for f in PRESETS[preset] if _name(f) not in given])


def backend_started() -> bool:
  if 'jax' not in sys.modules:
    return False
  from jax._src import xla_bridge  # private, but the only way to ask without starting it

  return xla_bridge.backends_are_initialized()


def apply(preset: str, environ=os.environ) -> str:
  """Adds the preset to XLA_FLAGS in `environ`; an error once JAX's backend has started,
  since XLA would silently ignore the flags."""
  check(preset)
  if PRESETS[preset] and environ is os.environ and backend_started():
    raise RuntimeError(
        f'xla.gpu_flags={preset!r} must be applied before JAX initialises its backend; '
        'start the run with `python -m scaling_vlm.train`, or set XLA_FLAGS yourself.'
    )
  environ['XLA_FLAGS'] = merged(preset, environ.get('XLA_FLAGS', ''))
  return environ['XLA_FLAGS']


def missing(preset: str, environ=os.environ) -> list[str]:
  """The preset's flags that XLA_FLAGS lacks (the run was not started through the CLI)."""
  check(preset)
  given = {_name(f) for f in environ.get('XLA_FLAGS', '').split()}
  return [f for f in PRESETS[preset] if _name(f) not in given]
