"""Shared pytest setup."""

import os

# XLA reads this once, when jax first initialises its backends, so it has to be set
# here, before any test module imports jax; the sharding tests need 8 CPU devices.
os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'
