"""`python -m fitting paper`: the paper's scaling-law analysis, from its released files.

Every group of laws that the paper's figure scripts fit (`scripts/fig*.sh` of
LAION-AI/scaling-laws-for-comparison, run through `scaling_laws/main.py`) is one row of
`GROUPS`: its task, schedule, filters, frontier, form, the procedures it fits (architecture,
data set and the script's LARGE_FLOPS_MAPPING threshold: fit up to it, predict above) and the
pairs it compares. The runner fits them all and adds what the paper does not report: bootstrap
intervals for every law, each pair's crossover interval and P(A beats B), a held-out check per
law, and, for the constant-LR groups, whether they rank as the cosine groups do.

Speed is in compiling: every fit is padded to one width, so each form compiles its programs
once for the whole command, and a law that two groups share is fitted once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import math
import os
import pathlib
import threading
import time
import zlib

import jax
import numpy as np
import pandas as pd

from fitting import bootstrap as bootstrap_lib
from fitting import compare, filters, forms, optimal, procedure, schedules, solver, table
from fitting import heldout as heldout_lib

DATACOMP, RELAION, WIT = 'datacomp_1b', 'relaion2b-en', 'CLIP-WIT'
IMAGENET = ('imagenet1k', 'acc1')
COCO = ('mscoco_captions', 'image_retrieval_recall@5')
ADE20K = ('ade20k', 'miou')
# The scripts' --min_flops: checkpoints below this compute never enter a fit.
MIN_FLOPS = 1e6
# Replicates start from the law's optimum plus this many strided starts of the form's grid
# (`fitting.bootstrap` uses 15): resampled frontiers stay near the original, and on every law
# of the benchmark's paper-sized tables 1 and 15 give the same intervals to four digits, at a
# tenth of the cost.
BOOT_GRID_STARTS = 1
# What the optimal group predicts: the scripts' --predict_for_vals for fig6.
OPTIMAL_AT = (2.14e12, 2.59e12)
# Threads that fit laws side by side (each fit runs on one core).
WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class Procedure:
  """One law of a group: the runs of one architecture on one pretraining data set."""

  label: str
  arch: str  # the table's namespace
  dataset: str
  # The script's LARGE_FLOPS_MAPPING for this architecture: the law is fitted on frontier
  # points up to it and predicts those above (inf: every point is fitted).
  fit_up_to: float = math.inf
  optional: bool = False  # absent from the table: noted, the group still runs


@dataclasses.dataclass(frozen=True)
class Group:
  """One figure of the paper: which points, which laws, and which pairs to compare."""

  name: str
  title: str
  script: str  # the paper's script that fits this group
  task: str
  metric: str
  procedures: tuple[Procedure, ...]
  comparisons: tuple[tuple[str, str], ...] = ()  # (A, B) labels: P(A beats B), A - B crossing
  source: str = 'csv'  # all_results.csv.gz, or the segmentation Parquet
  schedule: str = 'cosine'  # the script's --lr_scheduler, matched exactly
  form: str = 'saturation_both'
  frontier: str = 'pareto_bin'
  max_x: float = 1e12  # --max_x (the default where a script sets none)
  max_samples: float = 1e10  # --max_samples_seen; inf where a script sets none
  kind: str = 'law'  # 'law', or 'optimal': samples seen on the frontier against compute
  cosine_twin: str | None = None  # a constant-LR group: the cosine group to agree with
  ylabel: str = 'error'


def _archs(dataset: str, **fit_up_to: float) -> tuple[Procedure, ...]:
  return tuple(Procedure(arch, arch, dataset, limit) for arch, limit in fit_up_to.items())


def _datasets(arch: str, fit_up_to: float, *datasets: str) -> tuple[Procedure, ...]:
  return tuple(Procedure(d, arch, d, fit_up_to, optional=d == WIT) for d in datasets)


_IN1K_Y = 'ImageNet-1k 0-shot [error rate]'
_COCO_Y = 'MS-COCO image retrieval R@5 [error rate]'
_CLIP_MAMMUT = (('mammut', 'clip'),)
GROUPS = (
    Group(
        'fig1_imagenet',
        'CLIP vs MaMMUT on DataComp-1B: ImageNet-1k zero-shot',
        'scripts/fig1.sh',
        *IMAGENET,
        _archs(DATACOMP, clip=1e12, mammut=1e12),
        _CLIP_MAMMUT,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig1_coco',
        'CLIP vs MaMMUT on DataComp-1B: MS-COCO image retrieval',
        'scripts/fig1.sh',
        *COCO,
        _archs(DATACOMP, clip=1e12, mammut=1e12),
        _CLIP_MAMMUT,
        ylabel=_COCO_Y,
    ),
    Group(
        'fig2_relaion_imagenet',
        'CLIP vs MaMMUT on Re-LAION-2B: ImageNet-1k zero-shot',
        'scripts/fig2_relaion.sh',
        *IMAGENET,
        _archs(RELAION, clip=1e12, mammut=1e12),
        _CLIP_MAMMUT,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig2_relaion_coco',
        'CLIP vs MaMMUT on Re-LAION-2B: MS-COCO image retrieval',
        'scripts/fig2_relaion.sh',
        *COCO,
        _archs(RELAION, clip=1e12, mammut=1e12),
        _CLIP_MAMMUT,
        ylabel=_COCO_Y,
    ),
    Group(
        'fig7_clip_imagenet',
        'Re-LAION-2B vs DataComp-1B for CLIP: ImageNet-1k zero-shot',
        'scripts/fig7_relaion_datacomp.sh',
        *IMAGENET,
        _datasets('clip', 1e13, RELAION, DATACOMP, WIT),
        ((RELAION, DATACOMP),),
        max_x=1e13,
        max_samples=1e13,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig7_mammut_imagenet',
        'Re-LAION-2B vs DataComp-1B for MaMMUT: ImageNet-1k zero-shot',
        'scripts/fig7_relaion_datacomp.sh',
        *IMAGENET,
        _datasets('mammut', 1e12, RELAION, DATACOMP),
        ((RELAION, DATACOMP),),
        max_x=1e13,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig7_clip_coco',
        'Re-LAION-2B vs DataComp-1B for CLIP: MS-COCO image retrieval',
        'scripts/fig7_relaion_datacomp.sh',
        *COCO,
        _datasets('clip', 1e13, RELAION, DATACOMP, WIT),
        ((RELAION, DATACOMP),),
        max_x=1e13,
        max_samples=1e13,
        ylabel=_COCO_Y,
    ),
    Group(
        'fig7_mammut_coco',
        'Re-LAION-2B vs DataComp-1B for MaMMUT: MS-COCO image retrieval',
        'scripts/fig7_relaion_datacomp.sh',
        *COCO,
        _datasets('mammut', 1e12, RELAION, DATACOMP, WIT),
        ((RELAION, DATACOMP),),
        max_x=1e13,
        ylabel=_COCO_Y,
    ),
    Group(
        'fig4_const_imagenet',
        'Constant learning rate, CLIP vs MaMMUT on DataComp-1B: ImageNet-1k zero-shot',
        'scripts/fig4_const.sh',
        *IMAGENET,
        _archs(DATACOMP, clip=5e11, mammut=5e11),
        _CLIP_MAMMUT,
        schedule='const',
        max_x=2e11,
        max_samples=math.inf,
        cosine_twin='fig1_imagenet',
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig4_const_coco',
        'Constant learning rate, CLIP vs MaMMUT on DataComp-1B: MS-COCO image retrieval',
        'scripts/fig4_const.sh',
        *COCO,
        _archs(DATACOMP, clip=5e11, mammut=5e11),
        _CLIP_MAMMUT,
        schedule='const',
        max_x=2e11,
        max_samples=math.inf,
        cosine_twin='fig1_coco',
        ylabel=_COCO_Y,
    ),
    Group(
        'fig8_ade20k',
        'CLIP vs MaMMUT on DataComp-1B: ADE20K semantic segmentation',
        'scripts/fig8_segmentation.sh',
        *ADE20K,
        _archs(DATACOMP, clip=1e12, mammut=1e12),
        _CLIP_MAMMUT,
        source='parquet',
        ylabel='ADE20K segmentation [1 - mIoU]',
    ),
    Group(
        'fig5_siglip_clip',
        'SigLIP vs CLIP on DataComp-1B (saturation law): ImageNet-1k zero-shot',
        'scripts/fig5_by_model.sh',
        *IMAGENET,
        _archs(DATACOMP, siglip=1e10, clip=1e10),
        (('siglip', 'clip'),),
        form='saturation',
        max_x=1e11,
        max_samples=math.inf,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig5_coca_mammut_clip',
        'CoCa vs MaMMUT vs CLIP on DataComp-1B (saturation law): ImageNet-1k zero-shot',
        'scripts/fig5_by_model.sh',
        *IMAGENET,
        _archs(DATACOMP, coca=1e11, mammut=1e12, clip=1e10),
        (('coca', 'clip'), ('coca', 'mammut'), ('mammut', 'clip')),
        form='saturation',
        max_x=1e11,
        max_samples=math.inf,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig9_clip_siglip',
        'SigLIP vs CLIP on DataComp-1B, up to 1e10 GFLOPs: ImageNet-1k zero-shot',
        'scripts/fig9_siglip_coca.sh',
        *IMAGENET,
        _archs(DATACOMP, clip=1e10, siglip=1e10),
        (('siglip', 'clip'),),
        max_x=1e10,
        max_samples=1e9,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig9_coca_mammut',
        'CoCa vs MaMMUT on DataComp-1B, up to 1e10 GFLOPs: ImageNet-1k zero-shot',
        'scripts/fig9_siglip_coca.sh',
        *IMAGENET,
        _archs(DATACOMP, coca=1e11, mammut=1e12),
        (('coca', 'mammut'),),
        max_x=1e10,
        max_samples=1e9,
        ylabel=_IN1K_Y,
    ),
    Group(
        'fig6_optimal',
        'Compute-optimal samples seen against compute, DataComp-1B, ImageNet-1k frontier',
        'scripts/fig6_optimal_samples.sh',
        *IMAGENET,
        _archs(DATACOMP, mammut=1e12, clip=1e12),
        frontier='pareto_naive',
        kind='optimal',
        ylabel='samples seen on the frontier, D_opt(C)',
    ),
)
GROUP_NAMES = tuple(g.name for g in GROUPS)


def get_groups(names=None) -> tuple[Group, ...]:
  """The groups called `names` (all of them for None), in the table's order."""
  if not names:
    return GROUPS
  unknown = sorted(set(names) - set(GROUP_NAMES))
  if unknown:
    raise ValueError(f'unknown groups {unknown}; choose from {list(GROUP_NAMES)}')
  return tuple(g for g in GROUPS if g.name in names)


# ---- Reading the released files ----------------------------------------------------------


def _read_parquet(path) -> pd.DataFrame:
  long = table.import_paper_parquet(path)
  # Each row of the segmentation Parquet is one run's final evaluation, and the paper's code
  # keeps every row (its ADE20K filter has no checkpoint rule). The importer's stand-in for a
  # run's total (its model's largest samples_seen) would keep only each model's longest run.
  return long.assign(total_samples=long['samples_seen'])


def load_tables(results, parquet) -> dict[str, pd.DataFrame | str]:
  """Each source's long table, or, where it cannot be read, why (a one-line reason)."""
  tables: dict[str, pd.DataFrame | str] = {}
  for source, path, read in (
      ('csv', results, table.import_paper_csv),
      ('parquet', parquet, _read_parquet),
  ):
    if path is None:
      tables[source] = f'no {"--results" if source == "csv" else "--parquet"} file given'
      continue
    try:
      tables[source] = read(path)
    except (ValueError, OSError) as error:
      reason = str(error) if str(path) in str(error) else f'{path}: {error}'
      tables[source] = reason.replace('\n', ' ')
  return tables


# ---- Selecting each group's points, as scaling_laws/main.py's filter_data does ------------


def _eligible(long: pd.DataFrame, group: Group) -> pd.DataFrame:
  """The points of the group's task and schedule that pass the script's filters.

  The paper applies --max_x and --max_samples_seen to a run's totals (all_results' gflops_total
  and total_samples_seen, before it recomputes a constant-LR checkpoint's own compute), so a
  long constant-LR run is left out whole rather than cut at max_x; the other filters
  (min_flops, warmup, last checkpoint of a cosine run, failed runs) are per checkpoint.
  """
  samples = long['samples_seen'].to_numpy(np.float64)
  total = long['total_samples'].to_numpy(np.float64)
  with np.errstate(divide='ignore', invalid='ignore'):
    run_compute = long['compute_gflops'].to_numpy(np.float64) * total / samples
  keep = (run_compute <= group.max_x) & (total <= group.max_samples)
  task = (long['task'] == group.task).to_numpy()
  if task.any() and not (keep & task).any():
    raise ValueError(
        f'no {group.task} run within the script\'s --max_x {group.max_x:g} GFLOPs and '
        f'--max_samples_seen {group.max_samples:g}'
    )
  points = filters.eligible_points(
      long[keep],
      group.task,
      group.metric,
      max_x=math.inf,
      max_samples=math.inf,
      min_x=MIN_FLOPS,
  )
  return filters.select(points, lr_schedule=group.schedule)


@dataclasses.dataclass
class Prepared:
  """A procedure's points and frontier, before any fitting."""

  spec: Procedure
  points: pd.DataFrame
  frontier: pd.DataFrame

  @property
  def fitted(self) -> pd.DataFrame:
    return self.frontier[self.frontier['x'] <= self.spec.fit_up_to]


def prepare(group: Group, tables: dict) -> tuple[list[Prepared], list[str]]:
  """Each procedure's points and frontier, and notes on optional ones that are absent.

  Raises ValueError, naming what is missing, when the group cannot be fitted.
  """
  long = tables[group.source]
  if isinstance(long, str):
    raise ValueError(long)
  points = _eligible(long, group)
  n_params = forms.get(group.form).n_params if group.kind == 'law' else 2
  prepared, notes = [], []
  for spec in group.procedures:
    try:
      chosen = filters.select(points, arch=spec.arch, pretrain_dataset=spec.dataset)
    except ValueError as error:
      if spec.optional:
        notes.append(f'{spec.label}: not fitted ({error})')
        continue
      raise ValueError(f'{spec.label}: {error}') from None
    entry = Prepared(spec, chosen, filters.frontier_points(chosen, group.frontier))
    if len(entry.fitted) < n_params:
      law = group.form if group.kind == 'law' else 'a log-log line'
      why = (
          f'{spec.label}: only {len(entry.fitted)} frontier points up to {spec.fit_up_to:g} '
          f'for the {n_params} parameters of {law}'
      )
      if not spec.optional:
        raise ValueError(why)
      notes.append(f'{why}: not fitted')
      continue
    prepared.append(entry)
  return prepared, notes


# ---- Fitting: one padded width, each law once -------------------------------------------


def _pad(values: np.ndarray, width: int) -> np.ndarray:
  return np.concatenate([values, np.full(width - len(values), values[-1])])


class Fitter:
  """Fits and bootstraps at one padded width, so each form compiles once; each law once.

  `solver.fit` pads a frontier to a power of two, so laws of 12 and 20 points would compile
  separate programs (seconds each); here every frontier is padded, with zero weights, to the
  longest one's width. Thread-safe: a law asked for twice at once is computed once, and the
  first law of each form runs alone, so that two threads never compile one program twice.
  """

  def __init__(self, width: int, replicates: int, seed: int):
    self.width, self.replicates, self.seed = width, replicates, seed
    self._lock = threading.Lock()
    self._done: dict[tuple, concurrent.futures.Future] = {}
    self._form_locks = collections.defaultdict(threading.Lock)
    self._warm: set[str] = set()

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

  def warm(self, form: str, compute):
    """compute(), alone among this form's first uses: its programs compile exactly once."""
    if form in self._warm:
      return compute()
    with self._form_locks[form]:
      out = compute()
      self._warm.add(form)
      return out

  def fit(self, form: str, x, y) -> solver.Fit:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return self._once(('fit', form, x.tobytes(), y.tobytes()), lambda: self._fit(form, x, y))

  def _fit(self, form, x, y) -> solver.Fit:
    n, width = len(x), max(self.width, len(x))
    weights = np.concatenate([np.ones(n), np.zeros(width - n)])
    fit = solver.fit(form, _pad(x, width), _pad(y, width), weights=weights)
    return dataclasses.replace(fit, n_points=n)

  def bootstrap(self, fit: solver.Fit, x, y) -> bootstrap_lib.Bootstrap | None:
    """Frontier points drawn with replacement, as the paper's fit_bootstrap draws them."""
    if not self.replicates:
      return None
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    key = ('boot', fit.form.name, x.tobytes(), y.tobytes())
    return self._once(key, lambda: self._bootstrap(fit, x, y))

  def _bootstrap(self, fit, x, y) -> bootstrap_lib.Bootstrap:
    # Seeded by the data, so a law keeps its replicates whichever groups are run, and the two
    # sides of a comparison never share a seed.
    seed = self.seed + zlib.crc32(x.tobytes() + y.tobytes())
    n, width = len(x), max(self.width, len(x))
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), self.replicates)
    weights = np.zeros((self.replicates, width))
    weights[:, :n] = counts
    xs = np.broadcast_to(_pad(x, width), weights.shape)
    ys = np.broadcast_to(_pad(y, width), weights.shape)
    grid = fit.form.from_natural(fit.form.start_grid())
    stride = len(grid) // BOOT_GRID_STARTS
    starts = np.concatenate([fit.theta[None], grid[::stride][:BOOT_GRID_STARTS]])
    with jax.enable_x64(True):
      thetas, _ = solver.solve_replicates(fit.form, starts, np.log(xs), ys, weights, loss=fit.loss)
    counts_seen = np.sum(counts > 0, axis=1)
    return bootstrap_lib.Bootstrap(fit, np.asarray(thetas), seed, n_distinct=counts_seen)

  def held_out(self, form: str, x, y, threshold: float) -> heldout_lib.HeldOut:
    """Fit on frontier points up to `threshold`, predict the ones above (ValueError if none)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    train, test = x <= threshold, x > threshold
    if not test.any():
      raise ValueError(f'no frontier points above {threshold:g}')
    n_params = forms.get(form).n_params
    if train.sum() < n_params:
      raise ValueError(
          f'only {train.sum()} frontier points up to {threshold:g} for {n_params} parameters'
      )
    fit = self.fit(form, x[train], y[train])
    return heldout_lib.HeldOut(fit, threshold, x[test], y[test], fit.predict(x[test]))


# ---- One group's analysis -----------------------------------------------------------------


@dataclasses.dataclass
class Law:
  """A procedure's law as the paper fits it, with the held-out check beside it."""

  spec: Procedure
  proc: procedure.ProcedureFit  # held_out: the paper's split at spec.fit_up_to, if any
  check: heldout_lib.HeldOut | None  # fitted up to the command's held-out threshold
  check_note: str | None  # why there is no check
  allocation: dict | None = None  # optimal groups: samples seen ∝ C^slope


@dataclasses.dataclass
class Comparison:
  a: str
  b: str
  crossover: float | None
  interval: compare.CrossoverInterval | None  # None without a bootstrap
  p_a_beats_b: dict[float, float]


@dataclasses.dataclass
class GroupResult:
  group: Group
  laws: list[Law] = dataclasses.field(default_factory=list)
  comparisons: list[Comparison] = dataclasses.field(default_factory=list)
  agreement: list[tuple[str, str, schedules.Agreement]] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)
  cosine: GroupResult | None = None  # a constant-LR group's cosine twin, drawn beside it
  skipped: str | None = None
  done_at: float = 0.0  # seconds since the command started (laws are fitted ahead, in threads)

  def law(self, label: str) -> Law:
    return next(law for law in self.laws if law.spec.label == label)


def _law(fitter: Fitter, group: Group, entry: Prepared, heldout: float) -> Law:
  front = entry.frontier
  x, y = front['x'].to_numpy(), front['error'].to_numpy()
  fitted = x <= entry.spec.fit_up_to
  fit = fitter.fit(group.form, x[fitted], y[fitted])
  paper_held_out = None
  if not fitted.all():
    paper_held_out = heldout_lib.HeldOut(
        fit, entry.spec.fit_up_to, x[~fitted], y[~fitted], fit.predict(x[~fitted])
    )
  boot = fitter.bootstrap(fit, x[fitted], y[fitted])
  proc = procedure.ProcedureFit(entry.spec.label, entry.points, front, fit, paper_held_out, boot)
  try:
    check, note = fitter.held_out(group.form, x, y, heldout), None
  except ValueError as error:
    check, note = None, str(error)
  return Law(entry.spec, proc, check, note)


def _line_fit(x, samples) -> solver.Fit:
  slope, intercept = forms.loglog_line(x, samples)
  theta = np.array([intercept, slope])
  residual = np.log(forms.POWER_LAW.natural(theta)['a'] * x**slope) - np.log(samples)
  mse = float(np.mean(residual**2))
  return solver.Fit(forms.POWER_LAW, 'log', theta, mse, mse, len(x), 1.0)


def _line_bootstrap(fit: solver.Fit, x, samples, replicates: int, seed: int):
  """The log-log line refitted on frontier points drawn with replacement, in closed form."""
  n = len(x)
  counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), replicates)
  lx, ly = np.log(x), np.log(samples)
  total = counts.sum(axis=1)
  mx, my = counts @ lx / total, counts @ ly / total
  sxx = counts @ lx**2 / total - mx**2
  sxy = counts @ (lx * ly) / total - mx * my
  with np.errstate(divide='ignore', invalid='ignore'):
    slope = np.where(sxx > 0, sxy / sxx, np.nan)  # one distinct point: no line
  thetas = np.stack([my - slope * mx, slope], axis=1)
  return bootstrap_lib.Bootstrap(fit, thetas, seed, n_distinct=np.sum(counts > 0, axis=1))


def _optimal_law(fitter: Fitter, entry: Prepared, heldout: float) -> Law:
  """fig6: samples seen on the (naive) frontier as a power law of compute."""
  fitted = entry.fitted
  x, samples = fitted['x'].to_numpy(), fitted['samples_seen'].to_numpy(np.float64)
  allocation = optimal.allocation(fitted, 'samples_seen')
  fit = _line_fit(x, samples)
  boot = None
  if fitter.replicates:
    seed = fitter.seed + zlib.crc32(x.tobytes() + samples.tobytes())
    boot = _line_bootstrap(fit, x, samples, fitter.replicates, seed)
  front = entry.frontier.assign(error=entry.frontier['samples_seen'])
  points = entry.points.assign(error=entry.points['samples_seen'])
  proc = procedure.ProcedureFit(entry.spec.label, points, front, fit, None, boot)
  check, note = None, None
  fx, fs = front['x'].to_numpy(), front['error'].to_numpy(np.float64)
  train = fx <= heldout
  if not (fx > heldout).any():
    note = f'no frontier points above {heldout:g}'
  elif train.sum() < 2:
    note = f'only {train.sum()} frontier points up to {heldout:g} for a line'
  else:
    line = _line_fit(fx[train], fs[train])
    test = ~train
    check = heldout_lib.HeldOut(line, heldout, fx[test], fs[test], line.predict(fx[test]))
  return Law(entry.spec, proc, check, note, allocation)


def _comparison(result: GroupResult, a: str, b: str, at, level: float) -> Comparison:
  law_a, law_b = result.law(a).proc, result.law(b).proc
  if law_a.boot is None or law_b.boot is None:
    return Comparison(a, b, compare.crossover(law_a.fit, law_b.fit), None, {})
  interval = compare.crossover_interval(law_a.boot, law_b.boot, level)
  p = {float(x): compare.probability_a_beats_b(law_a.boot, law_b.boot, x) for x in at}
  return Comparison(a, b, interval.point, interval, p)


def _schedule_result(result: GroupResult, a: str, b: str, at) -> schedules.ScheduleResult:
  fit_a, fit_b = result.law(a).proc.fit, result.law(b).proc.fit
  ea, eb = fit_a.predict(at), fit_b.predict(at)
  winners = {float(x): a if u < v else b for x, u, v in zip(at, ea, eb)}
  return schedules.ScheduleResult(compare.crossover(fit_a, fit_b), winners)


def agreement(const: GroupResult, cosine: GroupResult, a: str, b: str, at, decades=1.0):
  """`fitting.schedules.agreement` on the two groups' own laws (their filters differ)."""
  at = np.asarray(at, np.float64)
  c1, c2 = _schedule_result(const, a, b, at), _schedule_result(cosine, a, b, at)
  if c1.crossover is None or c2.crossover is None:
    crossover_agrees = c1.crossover is None and c2.crossover is None
  else:
    crossover_agrees = abs(math.log10(c1.crossover / c2.crossover)) <= decades
  return schedules.Agreement(c1, c2, c1.winners == c2.winners, bool(crossover_agrees))


def analyse(
    group: Group, laws: list[Law], done: dict[str, GroupResult], *, at, level: float
) -> GroupResult:
  """The group's comparisons and, for a constant-LR group, its agreement with the cosine one."""
  result = GroupResult(group, laws=laws)
  fitted = {law.spec.label for law in laws}
  for a, b in group.comparisons:
    if a in fitted and b in fitted:
      result.comparisons.append(_comparison(result, a, b, at, level))
  twin = done.get(group.cosine_twin) if group.cosine_twin else None
  if group.cosine_twin and (twin is None or twin.skipped):
    why = 'was not run' if twin is None else f'was skipped: {twin.skipped}'
    result.notes.append(f'no constant-vs-cosine check: {group.cosine_twin} {why}')
  elif twin is not None:
    result.cosine = twin
    for a, b in group.comparisons:
      result.agreement.append((a, b, agreement(result, twin, a, b, at)))
  return result


def fit_law(fitter: Fitter, group: Group, entry: Prepared, heldout: float) -> Law:
  """One procedure's law, bootstrap and held-out check (a task for the thread pool)."""
  if group.kind == 'optimal':
    return _optimal_law(fitter, entry, heldout)
  return fitter.warm(group.form, lambda: _law(fitter, group, entry, heldout))


# ---- The whole command ---------------------------------------------------------------------


def run(
    results=None,
    parquet=None,
    *,
    groups=None,
    bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    at=(1e11, 1e12),
    heldout: float = 1e10,
    log=print,
    on_group=None,
) -> list[GroupResult]:
  """Every group's laws, comparisons and checks; a group that cannot be fitted is skipped.

  `log` gets one progress line per group; `on_group` (if given) each finished result, e.g.
  to draw its figure while the next group is fitted.
  """
  start = time.perf_counter()
  if bootstrap < 0:
    raise ValueError(f'--bootstrap must be >= 0, got {bootstrap}')
  if not 0 < level < 1:
    raise ValueError(f'--level must be in (0, 1), got {level}')
  chosen = get_groups(groups)
  tables = load_tables(results, parquet)
  prepared: dict[str, list[Prepared] | str] = {}
  notes: dict[str, list[str]] = {}
  for group in chosen:
    try:
      prepared[group.name], notes[group.name] = prepare(group, tables)
    except ValueError as error:
      prepared[group.name] = str(error)
  lengths = [len(e.fitted) for p in prepared.values() if not isinstance(p, str) for e in p]
  # The longest frontier sets the width every fit is padded to; a held-out check fits fewer.
  fitter = Fitter(solver.bucket(max(lengths, default=1)), bootstrap, seed)
  tasks = [
      ((g.name, j), g, entry)
      for g in chosen
      if not isinstance(prepared[g.name], str)
      for j, entry in enumerate(prepared[g.name])
  ]
  # Each form's first law first: it compiles the programs that every later law reuses.
  first_of_form = {}
  for key, g, _ in tasks:
    if g.kind == 'law':
      first_of_form.setdefault(g.form, key)
  tasks.sort(key=lambda task: task[0] not in first_of_form.values())
  # The fits run inside XLA, which releases the interpreter: threads fit laws side by side
  # while this one compares, reports and draws the groups already done.
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS)
  try:
    laws = {key: pool.submit(fit_law, fitter, g, entry, heldout) for key, g, entry in tasks}
    done: dict[str, GroupResult] = {}
    for i, group in enumerate(chosen, 1):
      entries = prepared[group.name]
      if isinstance(entries, str):
        result = GroupResult(group, skipped=entries)
      else:
        try:
          fitted = [laws[group.name, j].result() for j in range(len(entries))]
          result = analyse(group, fitted, done, at=at, level=level)
          result.notes[:0] = notes[group.name]
        except ValueError as error:
          result = GroupResult(group, skipped=str(error))
      result.done_at = time.perf_counter() - start
      done[group.name] = result
      log(f'[{i:2d}/{len(chosen)}] {group.name:<22} {progress(result)}')
      if on_group is not None:
        on_group(result)
  finally:
    pool.shutdown(cancel_futures=True)
  return list(done.values())


def progress(result: GroupResult) -> str:
  """One line on a finished group: what was fitted and how long it took, or why not."""
  if result.skipped:
    return f'skipped: {result.skipped}'
  parts = [f'{len(result.laws)} laws']
  for c in result.comparisons:
    where = 'no crossover' if c.crossover is None else f'cross at {c.crossover:.2g}'
    parts.append(f'{c.a} vs {c.b}: {where}')
  return ', '.join(parts) + f' (at {result.done_at:.1f} s)'


def add_flags(parser) -> None:
  """The `paper` subcommand's flags (`fitting.cli` registers the subcommand)."""
  add = parser.add_argument
  add('--results', required=True, help="the paper's all_results.csv.gz (its wide CSV)")
  add(
      '--parquet',
      default=None,
      help="the paper's segmentation_results.parquet, for the ADE20K group (skipped without)",
  )
  add('--out', type=pathlib.Path, required=True, help='directory for the report, tables, figures')
  add(
      '--groups',
      nargs='*',
      default=None,
      metavar='NAME',
      help=f'only these groups (default: all): {", ".join(GROUP_NAMES)}',
  )
  add(
      '--bootstrap',
      type=int,
      default=1000,
      metavar='N',
      help='bootstrap replicates per law, frontier points resampled (default 1000; 0: none)',
  )
  add('--seed', type=int, default=0, help='bootstrap seed (default 0)')
  add('--level', type=float, default=0.95, help='interval coverage (default 0.95)')
  add(
      '--at',
      type=float,
      nargs='*',
      default=[1e11, 1e12],
      metavar='X',
      help='compute (GFLOPs) for P(A beats B) and the predictions (default 1e11 1e12)',
  )
  add(
      '--heldout-threshold',
      type=float,
      default=1e10,
      metavar='X',
      help='held-out check: fit frontier points up to X, predict those above (default 1e10)',
  )
  add(
      '--no-compile-cache',
      action='store_true',
      help='compile every solver program afresh instead of loading it from the persistent cache',
  )
  parser.set_defaults(json=None)  # `fitting.cli` writes --json where a command has it


def command(args) -> dict:
  """`python -m fitting paper`: fit every group, write DIR/report.md and the rest."""
  # Imported here: it loads matplotlib, which only drawing needs.
  from fitting import paper_report  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  if args.out.exists() and not args.out.is_dir():
    raise ValueError(f'--out {args.out} is a file; give a directory for the report')
  args.out.mkdir(parents=True, exist_ok=True)
  with paper_report.Figures(args.out / 'figures', args.level) as figures:
    results = run(
        args.results,
        args.parquet,
        groups=args.groups,
        bootstrap=args.bootstrap,
        seed=args.seed,
        level=args.level,
        at=args.at,
        heldout=args.heldout_threshold,
        log=lambda line: print(line, flush=True),
        on_group=figures.submit,
    )
  settings = dict(
      results=str(args.results),
      parquet=None if args.parquet is None else str(args.parquet),
      bootstrap=args.bootstrap,
      seed=args.seed,
      level=args.level,
      at=list(args.at),
      heldout_threshold=args.heldout_threshold,
      seconds=time.perf_counter() - start,
  )
  summary = paper_report.write(results, args.out, settings)
  fitted = sum(not r.skipped for r in results)
  print(
      f'wrote {args.out / "report.md"}: {fitted} of {len(results)} groups fitted'
      f' in {settings["seconds"]:.1f} s'
  )
  if not fitted:
    raise ValueError(f'no group could be fitted; {args.out / "report.md"} says why')
  return summary
