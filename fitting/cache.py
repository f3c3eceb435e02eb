"""JAX's persistent compilation cache for the command line: compiled solvers kept on disk.

A cold `python -m fitting fit` spends most of its time compiling the solver (seconds on two
cores) and a fraction of a second fitting; with the cache, the next process loads the
programs instead of compiling them, and the solver's own programs whole, without tracing
them (`fitting.executables`, in the subfolder executables/). On by default, in the user's
cache directory ($XDG_CACHE_HOME or ~/.cache, then scaling-vlm/jax); FITTING_COMPILE_CACHE=off
(or 0, no, false) or the --no-compile-cache flag turns it off, FITTING_COMPILE_CACHE=DIR moves
it. A cache directory the user already gave JAX (JAX_COMPILATION_CACHE_DIR) is kept.
"""

from __future__ import annotations

import os
import pathlib

ENV = 'FITTING_COMPILE_CACHE'
_OFF = frozenset({'0', 'off', 'no', 'false', 'none'})


def default_dir() -> pathlib.Path:
  """The cache under the user's cache directory (XDG's rule; ~/.cache where it is unset)."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return pathlib.Path(base) / 'scaling-vlm' / 'jax'


def directory(enabled: bool = True) -> pathlib.Path | None:
  """Where compiled programs go: None when the flag or FITTING_COMPILE_CACHE turns it off."""
  setting = os.environ.get(ENV, '').strip()
  if not enabled or setting.lower() in _OFF:
    return None
  return pathlib.Path(setting).expanduser() if setting else default_dir()


def enable(enabled: bool = True) -> pathlib.Path | None:
  """Point JAX's persistent cache at `directory()`, before anything compiles; returns it."""
  import jax  # pylint: disable=g-import-not-at-top

  from fitting import executables  # pylint: disable=g-import-not-at-top

  path = directory(enabled)
  if path is not None and jax.config.jax_compilation_cache_dir and not os.environ.get(ENV):
    path = pathlib.Path(jax.config.jax_compilation_cache_dir)
  executables.use(None if path is None else path / 'executables')
  if path is None:
    return None
  jax.config.update('jax_compilation_cache_dir', str(path))
  # Every program, however small or quick to compile: the commands compile only a handful,
  # and on a loaded two-core machine even a 0.1 s compile is worth a file read.
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  return path
