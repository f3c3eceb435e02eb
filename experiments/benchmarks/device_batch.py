"""A random batch already on the mesh, so that benchmarks time the step, not the input; and
the timing loop they share."""

import time

import jax

from scaling_vlm import sharding
from scaling_vlm.models.config import ModelConfig


def random_batch(arch: ModelConfig, batch: int, mesh) -> dict[str, jax.Array]:
  """Normal images and in-vocabulary tokens (no SOT/EOT ids), split over the batch axes."""
  v, t = arch.vision, arch.text
  keys = jax.random.split(jax.random.key(0))
  images = jax.random.normal(keys[0], (batch, v.image_size, v.image_size, 3))
  tokens = jax.random.randint(keys[1], (batch, t.context_length), 1, t.vocab_size - 2)
  return {
      'images': jax.device_put(images, sharding.batch_sharding(mesh, 4)),
      'tokens': jax.device_put(tokens, sharding.batch_sharding(mesh, 2)),
  }


def time_calls(compiled, args: tuple, steps: int, repeats: int) -> list[float]:
  """Seconds per call of `compiled(*args)`, one value per repeat of `steps` calls, after a
  warm-up call; only the last result of a repeat is waited for, so calls overlap as in
  training."""
  jax.block_until_ready(compiled(*args))
  timings = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      out = compiled(*args)
    jax.block_until_ready(out)
    timings.append((time.perf_counter() - start) / steps)
  return timings
