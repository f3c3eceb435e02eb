"""Each paper law, fitted once at one padded width, with its bootstrap and held-out checks.

Speed is in compiling: `solver.fit` pads a frontier to a power of two, so laws of 12 and 20
points would compile separate programs (seconds each); here every fit and bootstrap is padded
to the longest frontier's width (`width=`), so each form compiles its programs once for the
whole command, and a fit that two groups (or a law and its check) share is done once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
import zlib

import numpy as np

from fitting import bootstrap as bootstrap_lib
from fitting import heldout as heldout_lib
from fitting import paper_groups, paper_points, procedure, solver

# Replicates start from the law's optimum plus this many strided starts of the form's grid
# (`fitting.bootstrap` uses 15): resampled frontiers stay near the original, and on every law
# of the benchmark's paper-sized tables 1 and 15 give the same intervals to four digits, at a
# tenth of the cost.
BOOT_GRID_STARTS = 1


class Laws:
  """Fits and bootstraps at one padded width, each computed once for all who ask.

  Thread-safe: a fit asked for twice at once is computed once, and the first law of each
  form runs alone (`warm`), so that two threads never compile one program twice.
  """

  def __init__(self, width: int, replicates: int, seed: int):
    self.width, self.replicates, self.seed = width, replicates, seed
    self._lock = threading.Lock()
    self._done: dict[tuple, concurrent.futures.Future] = {}
    self._form_locks = collections.defaultdict(threading.Lock)
    self._warm: set[tuple] = set()

  def _once(self, key: tuple, compute):
    """compute() the first time `key` is asked for; later (or concurrent) askers wait for it."""
    with self._lock:
      future, owner = self._done.get(key), False
      if future is None:
        future, owner = concurrent.futures.Future(), True
        self._done[key] = future
    if owner:
      try:
        future.set_result(compute())
      except Exception as error:  # pylint: disable=broad-except
        future.set_exception(error)  # raised again in every asker, by `result()`
    return future.result()

  def warm(self, program: tuple, compute):
    """compute(), alone among the first uses of `program` (a form and loss): it compiles once."""
    if program in self._warm:
      return compute()
    with self._form_locks[program]:
      out = compute()
      self._warm.add(program)
      return out

  def fit(self, form: str, x, y, loss: str = 'linear') -> solver.Fit:
    """`solver.fit` at the shared width (`heldout.held_out` calls it as its `fitter`)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    key = ('fit', form, loss, x.tobytes(), y.tobytes())
    return self._once(key, lambda: solver.fit(form, x, y, loss=loss, width=self.width))

  def bootstrap(self, fit: solver.Fit, x, y) -> bootstrap_lib.Bootstrap | None:
    """Frontier points drawn with replacement, as the paper's fit_bootstrap draws them."""
    if not self.replicates:
      return None
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    # Seeded by the data, so a law keeps its replicates whichever groups are run, and the two
    # sides of a comparison never share a seed.
    seed = self.seed + zlib.crc32(x.tobytes() + y.tobytes())
    key = ('boot', fit.form.name, fit.loss, x.tobytes(), y.tobytes())
    return self._once(
        key,
        lambda: bootstrap_lib.resample_points(
            fit, x, y, self.replicates, seed, grid_starts=BOOT_GRID_STARTS, width=self.width
        ),
    )


@dataclasses.dataclass
class Law:
  """A procedure's law as the paper fits it, with the held-out check beside it."""

  spec: paper_groups.Procedure
  proc: procedure.ProcedureFit  # held_out: the paper's split at spec.fit_up_to, if any
  check: heldout_lib.HeldOut | None  # fitted up to the command's held-out threshold
  check_note: str | None  # why there is no check
  allocation: dict | None = None  # optimal groups: samples seen = coefficient · C^slope


def fit_law(
    laws: Laws, group: paper_groups.Group, entry: paper_points.Prepared, heldout: float
) -> Law:
  """One procedure's law, bootstrap and held-out check (a task for a thread pool)."""
  return laws.warm((group.form, group.loss), lambda: _fit_law(laws, group, entry, heldout))


def _fit_law(laws: Laws, group, entry, heldout: float) -> Law:
  # The law models the frontier's `group.quantity` column: the error, or (fig6) samples seen,
  # which `ProcedureFit` and its figure then show as the y axis.
  front = entry.frontier.assign(error=entry.frontier[group.quantity])
  points = entry.points.assign(error=entry.points[group.quantity])
  x, y = front['x'].to_numpy(np.float64), front['error'].to_numpy(np.float64)

  def split(threshold: float) -> heldout_lib.HeldOut:
    return heldout_lib.held_out(x, y, threshold, group.form, fitter=laws.fit, loss=group.loss)

  fitted = x <= entry.spec.fit_up_to
  paper_split = None if fitted.all() else split(entry.spec.fit_up_to)
  fit = laws.fit(group.form, x, y, loss=group.loss) if paper_split is None else paper_split.fit
  boot = laws.bootstrap(fit, x[fitted], y[fitted])
  proc = procedure.ProcedureFit(entry.spec.label, points, front, fit, paper_split, boot)
  try:
    check, note = split(heldout), None
  except ValueError as error:
    check, note = None, str(error)
  allocation = None
  if group.kind == 'optimal':
    params = fit.params
    allocation = dict(
        quantity=group.quantity, slope=params['c'], coefficient=params['a'], n=fit.n_points
    )
  return Law(entry.spec, proc, check, note, allocation)
