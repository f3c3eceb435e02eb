"""Shared pytest setup."""

import os
import tempfile

# XLA reads this once, when jax first initialises its backends, so it has to be set
# here, before any test module imports jax; the sharding tests need 8 CPU devices.
os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'

# Tests (and the training subprocesses they start) compile the same tiny programs many
# times; jax's persistent compilation cache turns the repeats into loads.
os.environ.setdefault(
    'JAX_COMPILATION_CACHE_DIR', os.path.join(tempfile.gettempdir(), 'scaling_vlm_jax_cache')
)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
# `python -m fitting` keeps compiled programs in the user's cache; tests must not write there
# (tests/test_fitting_speed.py turns it on, in a folder of its own).
os.environ.setdefault('FITTING_COMPILE_CACHE', 'off')

# grain's worker processes read absl flags; pytest is the entry point here, not an absl app.
from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()
