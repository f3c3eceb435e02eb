"""`python -m fitting paper`: the paper's scaling-law analysis, from its released files.

Every group of laws that the paper's figure scripts fit (`fitting.paper_groups`) is selected
as its script selects it (`fitting.paper_points`) and fitted, with bootstrap and held-out
checks (`fitting.paper_laws`); this runner adds each pair's crossover interval and P(A beats
B) from the laws' bootstraps and, for the constant-LR groups, whether they rank as the cosine
groups do, and `fitting.paper_report` writes it all. Laws are fitted on threads ahead of the
groups that use them, while this thread compares the groups already done and hands each to
`on_group` (the command draws its figure there).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time

from fitting import compare, paper_groups, paper_laws, paper_points, schedules, solver

# Threads that fit laws side by side (each fit runs on one core).
WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclasses.dataclass
class Comparison:
  a: str
  b: str
  crossover: float | None
  interval: compare.CrossoverInterval | None  # None without a bootstrap
  p_a_beats_b: dict[float, float]


@dataclasses.dataclass
class GroupResult:
  group: paper_groups.Group
  laws: list[paper_laws.Law] = dataclasses.field(default_factory=list)
  comparisons: list[Comparison] = dataclasses.field(default_factory=list)
  agreement: list[tuple[str, str, schedules.Agreement]] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)
  cosine: GroupResult | None = None  # a constant-LR group's cosine twin, drawn beside it
  skipped: str | None = None
  # Where P(A beats B) and predictions are read: the group's own points, or the command's --at.
  at: tuple[float, ...] = ()
  done_at: float = 0.0  # seconds since the command started (laws are fitted ahead, in threads)

  def law(self, label: str) -> paper_laws.Law:
    return next(law for law in self.laws if law.spec.label == label)


def _comparison(result: GroupResult, a: str, b: str, at, level: float) -> Comparison:
  law_a, law_b = result.law(a).proc, result.law(b).proc
  if law_a.boot is None or law_b.boot is None:
    return Comparison(a, b, compare.crossover(law_a.fit, law_b.fit), None, {})
  interval = compare.crossover_interval(law_a.boot, law_b.boot, level)
  p = {float(x): compare.probability_a_beats_b(law_a.boot, law_b.boot, x) for x in at}
  return Comparison(a, b, interval.point, interval, p)


def agreement(const: GroupResult, cosine: GroupResult, a: str, b: str, at) -> schedules.Agreement:
  """`fitting.schedules.agreement` on the two groups' own laws (their filters differ)."""
  results = [
      schedules.result(g.law(a).proc.fit, g.law(b).proc.fit, a, b, at) for g in (const, cosine)
  ]
  return schedules.agree(*results)


def analyse(
    group: paper_groups.Group,
    laws: list[paper_laws.Law],
    done: dict[str, GroupResult],
    *,
    at,
    level: float,
) -> GroupResult:
  """The group's comparisons and, for a constant-LR group, its agreement with the cosine one."""
  result = GroupResult(group, laws=laws, at=tuple(at))
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
  chosen = paper_groups.get_groups(groups)
  tables = paper_points.load_tables(results, parquet)
  prepared: dict[str, list[paper_points.Prepared] | str] = {}
  notes: dict[str, list[str]] = {}
  for group in chosen:
    try:
      prepared[group.name], notes[group.name] = paper_points.prepare(group, tables)
    except ValueError as error:
      prepared[group.name] = str(error)
  lengths = [len(e.fitted) for p in prepared.values() if not isinstance(p, str) for e in p]
  # The longest frontier sets the width every fit is padded to; a held-out check fits fewer.
  laws = paper_laws.Laws(solver.bucket(max(lengths, default=1)), bootstrap, seed)
  tasks = [
      ((g.name, j), g, entry)
      for g in chosen
      if not isinstance(prepared[g.name], str)
      for j, entry in enumerate(prepared[g.name])
  ]
  # Each form's first law first: it compiles the programs that every later law reuses.
  first_of_form = {}
  for key, g, _ in tasks:
    first_of_form.setdefault((g.form, g.loss), key)
  tasks.sort(key=lambda task: task[0] not in first_of_form.values())
  # The fits run inside XLA, which releases the interpreter: threads fit laws side by side
  # while this one compares, reports and draws the groups already done.
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS)
  try:
    futures = {
        key: pool.submit(paper_laws.fit_law, laws, g, entry, g.heldout or heldout)
        for key, g, entry in tasks
    }
    done: dict[str, GroupResult] = {}
    for i, group in enumerate(chosen, 1):
      entries = prepared[group.name]
      if isinstance(entries, str):
        result = GroupResult(group, skipped=entries)
      else:
        try:
          fitted = [futures[group.name, j].result() for j in range(len(entries))]
          result = analyse(group, fitted, done, at=group.at or at, level=level)
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


def headline(result: GroupResult) -> str:
  """What a finished group found, in a few words, or why it was skipped."""
  if result.skipped:
    return f'skipped: {result.skipped}'
  parts = [f'{len(result.laws)} laws']
  for c in result.comparisons:
    where = 'no crossover' if c.crossover is None else f'cross at {c.crossover:.2g}'
    parts.append(f'{c.a} vs {c.b}: {where}')
  return ', '.join(parts)


def progress(result: GroupResult) -> str:
  """The group's progress line: its headline, and when it was done unless skipped."""
  return headline(result) + ('' if result.skipped else f' (at {result.done_at:.1f} s)')


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
