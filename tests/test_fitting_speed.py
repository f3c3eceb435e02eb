"""What a cold `python -m fitting fit` compiles, and the persistent cache that spares it.

No time is asserted: what is checked is what makes the time, i.e. which programs compile
(three for a fit, none of them the bootstrap's or op-by-op kernels), that one program serves
frontiers of different lengths, and that a second process loads them all from the cache
without tracing or compiling anything.
"""

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

import results_rows
from fitting import cache, executables, forms, solver

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  x = np.geomspace(1e7, 1e11, 12)
  rows = [
      results_rows.row('clip', 'dfn', 10.0, c / 10, 2.0 * c**-0.1, run_id=f'r{i}', model='m')
      for i, c in enumerate(x)
  ]
  return pathlib.Path(results_rows.write(rows, tmp_path_factory.mktemp('speed') / 'results.csv'))


def fit_process(results, cache_setting, *flags):
  """A new `python -m fitting fit` process; its compile log (stderr) and exit status."""
  env = dict(os.environ, JAX_LOG_COMPILES='1', FITTING_COMPILE_CACHE=str(cache_setting))
  argv = [sys.executable, '-m', 'fitting', 'fit', '--results', str(results), '--task']
  argv += ['imagenet1k', '--form', 'power_law', *flags]
  done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr
  return done.stderr


def compiled(log: str) -> list[str]:
  return sorted(re.findall(r'Finished XLA compilation of jit\((\w+)\)', log))


def test_a_fit_compiles_three_programs_and_the_cache_serves_the_next_process(results, tmp_path):
  store = tmp_path / 'cache'
  first = fit_process(results, store)
  # Coarse and polish stages and one prediction program: no bootstrap (none was asked
  # for) and no op-by-op kernels.
  assert compiled(first) == ['_predict', '_solve_starts', '_solve_starts']
  saved = sorted(os.listdir(store / 'executables'))
  assert [name.split('-')[0] for name in saved] == ['coarse', 'polish', 'predict']
  entries = sorted(os.listdir(store))
  second = fit_process(results, store)
  # The next process loads the executables whole: nothing traced, nothing compiled.
  assert 'Finished tracing' not in second and compiled(second) == []
  assert sorted(os.listdir(store)) == entries
  assert sorted(os.listdir(store / 'executables')) == saved


def test_the_flag_turns_the_cache_off(results, tmp_path):
  fit_process(results, tmp_path / 'flagged', '--no-compile-cache')
  assert not (tmp_path / 'flagged').exists()


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path):
  monkeypatch.delenv(cache.ENV, raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  assert cache.directory() == tmp_path / 'scaling-vlm' / 'jax'
  assert cache.directory(enabled=False) is None
  for off in ('off', '0', 'No'):
    monkeypatch.setenv(cache.ENV, off)
    assert cache.directory() is None
  monkeypatch.setenv(cache.ENV, str(tmp_path / 'elsewhere'))
  assert cache.directory() == tmp_path / 'elsewhere'


def test_frontiers_of_different_lengths_share_one_program():
  assert [solver.bucket(n) for n in (1, 8, 9, 16, 17, 40)] == [8, 8, 16, 16, 32, 64]
  x = np.geomspace(1e7, 1e11, 16)
  solver.fit('power_law', x[:9], 2.0 * x[:9] ** -0.1)
  programs = solver.solve_starts._cache_size()
  for n in (10, 13, 16):
    fit = solver.fit('power_law', x[:n], 2.0 * x[:n] ** -0.1)
    assert fit.params['c'] == pytest.approx(-0.1, rel=1e-6)  # padding changes nothing
  assert solver.solve_starts._cache_size() == programs


def test_a_shared_width_serves_every_frontier_with_one_program():
  # `width` pads past the bucket: frontiers of 9 and 20 points (buckets 16 and 32) fitted at
  # width 32 share the programs that a 32-point fit compiles, and get the same law.
  x = np.geomspace(1e7, 1e11, 20)
  y = 2.0 * x**-0.1
  solver.fit('power_law', x, y, width=32)
  programs = solver.solve_starts._cache_size(), solver._polish_starts._cache_size()
  fit = solver.fit('power_law', x[:9], y[:9], width=32)
  assert (solver.solve_starts._cache_size(), solver._polish_starts._cache_size()) == programs
  assert fit.n_points == 9 and fit.params['c'] == pytest.approx(-0.1, rel=1e-6)


def test_a_second_form_keys_a_saved_executable_by_name_and_source():
  # A Form's repr holds its functions' addresses, which differ in every process: a key made
  # from it would never find the executable that an earlier process saved.
  moved = dataclasses.replace(
      forms.POWER_LAW, value_and_jac=copy_function(forms.POWER_LAW.value_and_jac)
  )
  args = (np.zeros((1, 2)),)
  key = lambda other: executables._key('crossings', forms.POWER_LAW, dict(other=other), args)
  assert key(moved) == key(forms.POWER_LAW) != key(forms.SATURATION)


def copy_function(f):
  """The same code at another address, as a new process would load it."""
  return types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)


def test_a_saved_executable_that_does_not_load_is_compiled_again(tmp_path):
  theta, x = np.array([np.log(2.0), -0.1]), np.geomspace(1e7, 1e11, 8)
  executables.use(tmp_path)
  try:
    with jax.enable_x64(True):
      run = lambda: executables.call('predict', solver._predict, forms.POWER_LAW, theta, x)
      expected = np.asarray(run())
      (saved,) = tmp_path.iterdir()
      saved.write_bytes(b'torn')  # a write cut short, or another jaxlib's format
      executables._loaded.clear()
      np.testing.assert_allclose(run(), expected)
    assert saved.stat().st_size > 1000  # compiled and saved again
  finally:
    executables.use(None)
    executables._loaded.clear()
  np.testing.assert_allclose(expected, 2.0 * x**-0.1, rtol=1e-12)


def test_programs_jax_cached_are_saved_whole_only_from_a_fresh_compile(results, tmp_path):
  # JAX's persistent cache still holds the programs when their saved executables are gone:
  # one served from there serialises into one that the next process cannot run, so the
  # executables are compiled afresh before they are saved.
  fit_process(results, tmp_path)
  for saved in (tmp_path / 'executables').iterdir():
    saved.unlink()
  fit_process(results, tmp_path)  # compiles (JAX's cache on) and saves again
  assert compiled(fit_process(results, tmp_path)) == []  # loads what it saved, and it runs
