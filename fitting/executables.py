"""Compiled programs (the solver's, the bootstrap's, the crossover search) saved whole, so
that a process with a warm cache skips tracing too.

JAX's persistent cache (`fitting.cache`) spares a new process the compile, but not tracing and
lowering each program to find its cache key; for the solver's Levenberg–Marquardt loop that
costs about half a second on two cores, several times the fit itself. Here the executable is
saved next to JAX's cache, keyed by everything that decides it: the program and its static
arguments, its inputs' shapes and dtypes, the source of the modules that define it, the JAX
version, XLA_FLAGS, the backend and device, and the CPU (whose instruction set a CPU
executable is compiled for). With the cache off, or a saved executable that does not load,
the program is compiled as usual.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import pickle
import platform
import tempfile
import threading

import jax
from jax.experimental import serialize_executable

from fitting import forms

# The modules whose code a saved executable runs: an edit to any of them is a new key.
_SOURCES = ('solver.py', 'bootstrap.py', 'compare.py', 'forms.py', 'executables.py')
_directory: pathlib.Path | None = None  # set by `use`; None: every program is jitted
_loaded: dict[str, object] = {}  # key -> executable, for the life of the process
_cache_switch = threading.Lock()  # held while `_compile` turns JAX's persistent cache off


def use(directory: pathlib.Path | None) -> None:
  """Save and load executables under `directory` (None: never)."""
  global _directory
  _directory = directory


@functools.cache
def _environment() -> str:
  """Everything outside the call that decides the executable."""
  here = pathlib.Path(__file__).parent
  sources = b''.join((here / name).read_bytes() for name in _SOURCES)
  try:
    with open('/proc/cpuinfo') as f:
      cpu = ''.join(sorted({l for l in f if l.startswith(('model name', 'flags'))}))
  except OSError:
    cpu = platform.machine() + platform.processor()
  device = jax.devices()[0]
  parts = [jax.__version__, jax.default_backend(), device.device_kind, cpu]
  parts.append(os.environ.get('XLA_FLAGS', ''))  # flags can change the generated code
  return hashlib.sha256(sources + '\n'.join(parts).encode()).hexdigest()


@functools.cache
def _form_source(form) -> str:
  """The source file of a form's functions: a form defined outside `_SOURCES` is code too."""
  files = sorted({f.__code__.co_filename for f in (form.value_and_jac, form.shape)})
  return hashlib.sha256(b''.join(pathlib.Path(f).read_bytes() for f in files)).hexdigest()


def _static_text(value):
  """A static argument as the key holds it: a form (a second one, say) by name and source,
  since its repr names its functions' addresses, which differ in every process."""
  if isinstance(value, forms.Form):
    return (value.name, _form_source(value))
  return value


def _key(name: str, form, static: dict, args) -> str:
  shapes = [(tuple(a.shape), str(a.dtype)) for a in args]
  static = sorted((k, _static_text(v)) for k, v in static.items())
  keyed = (name, form.name, _form_source(form), static, shapes)
  text = repr((keyed, jax.config.jax_enable_x64, _environment()))
  return f'{name}-{hashlib.sha256(text.encode()).hexdigest()[:32]}'


def _load(path: pathlib.Path):
  try:
    with open(path, 'rb') as f:
      payload = pickle.load(f)
    # On the default device, where jit would run it: with several (e.g. forced host
    # devices) the loader would otherwise spread it over all of them.
    devices = [jax.devices()[0]]
    return serialize_executable.deserialize_and_load(*payload, execution_devices=devices)
  except Exception:  # pylint: disable=broad-except
    return None  # absent, torn, or from a jaxlib that cannot read it: compile instead


def _save(path: pathlib.Path, executable) -> None:
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
      pickle.dump(serialize_executable.serialize(executable), f)
    os.replace(f.name, path)  # whole or not at all, whoever else is writing it
  except OSError:
    pass  # a read-only cache directory costs the next process a compile, nothing more


def _compile(jitted, form, args, static):
  """A fresh compile, never one served by JAX's persistent cache: an executable JAX loaded
  from there serialises into one that fails when the next process calls it (NOT_FOUND for one
  of its fused functions). The switch is process-wide (JAX has no public per-thread one), so
  one lock holds it: two threads saving at once would otherwise restore each other's `False`
  and leave the cache off for the rest of the process."""
  with _cache_switch:
    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update('jax_enable_compilation_cache', False)
    try:
      return jitted.lower(form, *args, **static).compile()
    finally:
      jax.config.update('jax_enable_compilation_cache', enabled)


def call(name: str, jitted, form, *args, **static):
  """`jitted(form, *args, **static)`, from a saved executable where there is one.

  `form` (a `fitting.forms.Form`, keyed by its name) and the keyword arguments are the
  program's static arguments; `args` are arrays.
  """
  if _directory is None:
    return jitted(form, *args, **static)
  key = _key(name, form, static, args)
  path = _directory / f'{key}.bin'
  if key not in _loaded:
    executable = _load(path)
    if executable is not None:
      try:
        result = executable(*args)
      except Exception:  # pylint: disable=broad-except
        executable = None  # saved by an older version with that defect: replace it
      else:
        _loaded[key] = executable
        return result
    executable = _compile(jitted, form, args, static)
    _save(path, executable)
    _loaded[key] = executable
  return _loaded[key](*args)
