"""`python -m fitting paper` end to end, on tables in the paper's format made from known laws.

Every cosine run's last checkpoint lies on its procedure's law (give or take a little noise),
so the frontier is those points and a fit must give the law back. The tables also hold what
the paper's filters must keep out: a cosine run's earlier checkpoint, a constant-LR checkpoint
before warmup and, for fig11's log-likelihood laws, evaluations of another type, each far
better than the law (a filter that let them in would bend the fit), and runs that are simply
worse (the frontier must pass over them).
"""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from fitting import cli, paper, paper_groups, paper_points, table

LN_B = 17.0
# (a, c, d) of E(C) = a·(C + e^17)^c + d per task and (namespace, data set).
LAWS = {
    'imagenet1k': {
        ('clip', paper_groups.DATACOMP): (3.0, -0.10, 0.20),
        ('mammut', paper_groups.DATACOMP): (9.0, -0.14, 0.15),
        ('coca', paper_groups.DATACOMP): (8.0, -0.13, 0.17),
        ('siglip', paper_groups.DATACOMP): (3.2, -0.10, 0.21),
        ('clip', paper_groups.RELAION): (3.0, -0.10, 0.23),
        ('mammut', paper_groups.RELAION): (8.0, -0.13, 0.18),
    },
    'mscoco_captions': {
        ('clip', paper_groups.DATACOMP): (2.5, -0.09, 0.25),
        ('mammut', paper_groups.DATACOMP): (6.0, -0.12, 0.20),
        ('coca', paper_groups.DATACOMP): (6.0, -0.12, 0.22),
        ('siglip', paper_groups.DATACOMP): (2.5, -0.09, 0.26),
        ('clip', paper_groups.RELAION): (2.5, -0.09, 0.28),
        ('mammut', paper_groups.RELAION): (6.0, -0.12, 0.24),
    },
    # fig10's further benchmarks
    'imagenet-r_test': {
        ('clip', paper_groups.DATACOMP): (2.0, -0.08, 0.30),
        ('mammut', paper_groups.DATACOMP): (4.0, -0.11, 0.25),
    },
    'datacomp_classification_stable_eval': {
        ('clip', paper_groups.DATACOMP): (2.5, -0.09, 0.35),
        ('mammut', paper_groups.DATACOMP): (5.0, -0.12, 0.30),
    },
    'imagenetv2_test': {
        ('clip', paper_groups.DATACOMP): (3.0, -0.10, 0.28),
        ('mammut', paper_groups.DATACOMP): (8.0, -0.13, 0.24),
    },
}
# fig11: ImageNet-1k on DataComp-1B scored by log-likelihood. MaMMUT's runs score a little worse
# this way than by similarity, so the groups that take every eval_type keep its similarity laws.
LOG_LIKELIHOOD_LAWS = {'cap': (7.0, -0.13, 0.20), 'mammut': (9.0, -0.14, 0.165)}
ADE_LAWS = {'clip': (2.0, -0.08, 0.45), 'mammut': (3.0, -0.11, 0.40)}
METRIC = {task: 'acc1' for task in LAWS} | {'mscoco_captions': 'image_retrieval_recall@5'}
CONST_OFFSET = 0.01  # constant-LR checkpoints sit this far above the cosine law
NOISE = 0.002  # on the cosine runs' last checkpoints, so that the bootstrap has work to do
COMPUTE = np.geomspace(1e6, 1e12, 16)  # cosine runs, 0.4 decades apart


def law(params, c):
  a, exponent, d = params
  return a * (c + np.exp(LN_B)) ** exponent + d


def crossover(task, arch_a, arch_b, dataset=paper_groups.DATACOMP):
  """Where the true laws of two procedures cross (they do once in 1e6..1e16)."""
  grid = np.geomspace(1e6, 1e16, 200001)
  diff = law(LAWS[task][arch_a, dataset], grid) - law(LAWS[task][arch_b, dataset], grid)
  return grid[np.flatnonzero(np.diff(np.sign(diff)))[0]]


def gflops(c):
  """Model size grows with compute: samples seen = 1e3·C^0.5 on every cosine run."""
  return np.sqrt(c) / 1e3


def wide_row(namespace, dataset, task, schedule, model_gflops, total, epoch, epochs, error, **kw):
  metric = METRIC[task]
  row = dict(
      model=f'{namespace}_ViT-{model_gflops:.3g}',
      namespace=namespace,
      model_simple=f'ViT-{model_gflops:.3g}',
      pretrain_dataset=dataset,
      downstream_dataset=task,
      lr_scheduler=schedule,
      eval_type=kw.get('eval_type', 'similarity'),
      total_samples_seen=total,
      epoch=epoch,
      total_epochs=epochs,
      gflops=model_gflops,
      gflops_total=model_gflops * total,
      global_batch_size=1024,
      warmup=kw.get('warmup', 10),
      samples_seen_scale_pretty='-',
      acc1=np.nan,
      **{
          'image_retrieval_recall@5': np.nan,
          'text_retrieval_recall@5': np.nan,
          'contrastive_loss': np.nan,
      },
  )
  row[metric] = 1 - error
  if task == 'mscoco_captions':
    row['text_retrieval_recall@5'] = 1 - error + 0.05
  return row


def paper_rows():
  rng = np.random.default_rng(0)
  rows = []
  for task, laws in LAWS.items():
    for (namespace, dataset), params in laws.items():
      for c in COMPUTE:
        g = gflops(c)
        args = (namespace, dataset, task, 'cosine', g, c / g)
        rows.append(wide_row(*args, 8, 8, law(params, c) + rng.normal(0, NOISE)))
        # Halfway through its schedule a cosine run has not annealed: never a point.
        rows.append(wide_row(*args, 4, 8, law(params, c / 2) - 0.08))
        # A worse run just above: the frontier passes over it.
        worse = law(params, 1.3 * c) + 0.05
        rows.append(wide_row(namespace, dataset, task, 'cosine', g, 1.3 * c / g, 8, 8, worse))
      if dataset != paper_groups.DATACOMP or namespace not in ('clip', 'mammut'):
        continue
      # Four long constant-LR runs, up to fig4's 2e11 GFLOPs, of five checkpoints each.
      for run_compute in np.geomspace(1e7, 1.9e11, 4):
        g = gflops(run_compute)
        total = run_compute / g
        warmup = int(0.25 * total / 1024)  # the first checkpoint comes before warmup ends
        for epoch in range(1, 6):
          error = law(params, run_compute * epoch / 5) + (CONST_OFFSET if epoch > 1 else -0.1)
          args = (namespace, dataset, task, 'const', g, total, epoch, 5, error)
          rows.append(wide_row(*args, warmup=warmup))
      # A run past fig4's --max_x: the paper drops it whole (all_results' gflops_total is a
      # run's), its checkpoints below 2e11 GFLOPs too, which beat the law here.
      g = gflops(4e11)
      for epoch in range(1, 9):
        error = law(params, 4e11 * epoch / 8) - 0.05
        rows.append(wide_row(namespace, dataset, task, 'const', g, 4e11 / g, epoch, 8, error))
  for namespace, params in LOG_LIKELIHOOD_LAWS.items():
    for c in COMPUTE:
      g = gflops(c)
      args = (namespace, paper_groups.DATACOMP, 'imagenet1k', 'cosine', g, c / g, 8, 8)
      error = law(params, c) + rng.normal(0, NOISE)
      rows.append(wide_row(*args, error, eval_type='log_likelihood'))
      if namespace == 'cap':  # another evaluation of the same run, which fig11 must leave out
        rows.append(wide_row(*args, law(params, c) - 0.1, eval_type='contrastive'))
  return pd.DataFrame(rows)


def parquet_frame():
  rows = []
  for namespace, params in ADE_LAWS.items():
    for c in COMPUTE:
      g = gflops(c)
      rows.append(
          dict(
              model=f'{namespace}_ViT-{g:.3g}',
              namespace=namespace,
              pretrain_dataset=paper_groups.DATACOMP,
              downstream_dataset='ade20k',
              lr_scheduler='cosine',
              samples_seen=c / g,
              global_batch_size=1024,
              warmup=10,
              lr=1e-3,
              model_gflops=g,
              gflops=c,
              epoch=8,
              total_epochs=8,
              miou=1 - law(params, c),
          )
      )
  return pd.DataFrame(rows)


def paper_cli(argv):
  # The persistent compilation cache is the command line's own concern (test_fitting_cli.py);
  # these runs compile in the test process (whose jax cache conftest sets).
  return cli.main(['paper', '--no-compile-cache', *argv])


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  folder = tmp_path_factory.mktemp('paper')
  csv, parquet = folder / 'all_results.csv.gz', folder / 'segmentation_results.parquet'
  paper_rows().to_csv(csv, index=False)
  parquet_frame().to_parquet(parquet)
  return csv, parquet


@pytest.fixture(scope='module')
def reported(files, tmp_path_factory):
  csv, parquet = files
  out = tmp_path_factory.mktemp('report')
  argv = ['--results', str(csv), '--parquet', str(parquet), '--out', str(out)]
  return paper_cli(argv), out


def read_table(out, group, kind):
  return pd.read_csv(out / 'tables' / f'{group}.{kind}.csv')


def test_every_group_is_fitted_and_written(reported, capsys):
  code, out = reported
  assert code == 0
  report = (out / 'report.md').read_text()
  assert 'Skipped' not in report
  for name in paper_groups.GROUP_NAMES:
    assert f'\n## {name}\n' in report
    assert (out / 'figures' / f'{name}.png').stat().st_size > 10_000
    procedures = paper_groups.get_groups([name])[0].procedures
    assert len(read_table(out, name, 'laws')) == sum(not p.optional for p in procedures)
  summary = json.loads((out / 'paper.json').read_text())
  assert [g['name'] for g in summary['groups']] == list(paper_groups.GROUP_NAMES)
  assert all(g['skipped'] is None for g in summary['groups'])
  # CLIP-WIT, which the table lacks, is optional in fig7: noted, and the group still runs
  assert "- CLIP-WIT: not fitted (no points with pretrain_dataset='CLIP-WIT'" in report
  tex = (out / 'report.tex').read_text()
  n_tables = sum(len(g['tables']) for g in summary['groups'])
  assert tex.count(r'\begin{tabular}') == n_tables == len(list((out / 'tables').glob('*.tex')))


@pytest.mark.parametrize(
    'group, task', [('fig1_imagenet', 'imagenet1k'), ('fig1_coco', 'mscoco_captions')]
)
def test_the_known_laws_come_back(reported, group, task):
  _, out = reported
  laws = read_table(out, group, 'laws').set_index('procedure')
  for arch in ('clip', 'mammut'):
    a, c, d = LAWS[task][arch, paper_groups.DATACOMP]
    row = laws.loc[arch]
    assert row['c'] == pytest.approx(c, abs=0.01)
    assert row['d'] == pytest.approx(d, abs=0.02)
    assert row['ln b'] == pytest.approx(LN_B, abs=0.5)
    assert row['MSE'] < 2 * NOISE**2
    # every cosine run's end; neither the worse runs nor the early checkpoints
    assert row['fitted points'] == row['frontier points'] == len(COMPUTE)
  cmp = read_table(out, group, 'comparisons').iloc[0]
  assert (cmp['A'], cmp['B']) == ('mammut', 'clip')
  truth = crossover(task, 'mammut', 'clip')
  assert cmp['crossover'] == pytest.approx(truth, rel=0.1)
  assert cmp['crossover low'] <= truth <= cmp['crossover high']
  assert cmp['P(A beats B)@1e+12'] > 0.95


def test_markdown_tables_say_what_the_csv_says(reported):
  _, out = reported
  report = (out / 'report.md').read_text()
  section = report.split('\n## fig1_imagenet\n')[1].split('\n## ')[0]
  lines = [l for l in section.splitlines() if l.startswith('| clip |')]
  cells = [c.strip() for c in lines[0].strip('|').split('|')]
  laws = read_table(out, 'fig1_imagenet', 'laws')
  header = list(laws.columns)
  clip = laws.set_index('procedure').loc['clip']
  for name in ('a', 'ln b', 'c', 'd'):
    assert float(cells[header.index(name)]) == pytest.approx(clip[name], rel=1e-3)


def test_constant_lr_laws_agree_with_the_cosine_ones(reported):
  _, out = reported
  laws = read_table(out, 'fig4_const_imagenet', 'laws').set_index('procedure')
  for arch in ('clip', 'mammut'):
    _, c, d = LAWS['imagenet1k'][arch, paper_groups.DATACOMP]
    # neither the checkpoints before warmup nor the run past --max_x pull the law down
    assert laws.loc[arch, 'd'] == pytest.approx(d + CONST_OFFSET, abs=0.01)
    assert laws.loc[arch, 'points'] == 16  # four runs, four checkpoints after warmup each
  agree = read_table(out, 'fig4_const_imagenet', 'agreement').iloc[0]
  assert agree['rankings agree'] and agree['crossovers agree']
  assert agree['winner@1e+12 constant-LR'] == agree['winner@1e+12 cosine'] == 'mammut'


def test_segmentation_optimal_samples_and_the_heldout_check(reported):
  _, out = reported
  ade = read_table(out, 'fig8_ade20k', 'laws').set_index('procedure')
  for arch, (_, c, d) in ADE_LAWS.items():
    assert ade.loc[arch, 'c'] == pytest.approx(c, abs=0.01)
    assert ade.loc[arch, 'd'] == pytest.approx(d, abs=0.01)
  optimal = read_table(out, 'fig6_optimal', 'laws').set_index('procedure')
  assert optimal['slope'].tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
  assert optimal['coefficient'].tolist() == pytest.approx([1e3, 1e3], rel=1e-4)
  intervals = read_table(out, 'fig1_imagenet', 'intervals').set_index('procedure')
  for arch in ('clip', 'mammut'):
    row = intervals.loc[arch]
    # fitted on the 11 points up to 1e10, it predicts the 5 above to within the noise
    assert row['check points above'] == 5 and row['check fit up to'] == 1e10
    assert row['check max abs rel error'] < 0.05
    assert row['c low'] <= LAWS['imagenet1k'][arch, paper_groups.DATACOMP][1] <= row['c high']
  # fig9 fits only up to 1e10: nothing is left above for the check, and the table says so
  fig9 = read_table(out, 'fig9_clip_siglip', 'intervals')
  assert fig9['check note'].str.startswith('no points above the threshold 1e+10').all()


def test_fig11_fits_log_likelihood_evaluations_only(reported):
  _, out = reported
  laws = read_table(out, 'fig11_cap_mammut', 'laws').set_index('procedure')
  intervals = read_table(out, 'fig11_cap_mammut', 'intervals').set_index('procedure')
  for arch, params in LOG_LIKELIHOOD_LAWS.items():
    # one point per run: neither MaMMUT's similarity rows nor CapPa's far better contrastive
    # ones, which would pull its law down by 0.1
    assert laws.loc[arch, 'points'] == len(COMPUTE)
    assert intervals.loc[arch, 'E@1e+12'] == pytest.approx(law(params, 1e12), abs=0.01)
  # the script's LARGE_FLOPS_MAPPING names no cap, and MaMMUT's 1e12 is all of COMPUTE
  assert (laws['fitted points'] == laws['frontier points']).all()


def test_fig12_fits_fewer_points_and_predicts_the_rest(reported):
  _, out = reported
  for group, above in (('fig12_imagenet_2p5e11', 2), ('fig12_coco_5e11', 1)):
    laws = read_table(out, group, 'laws').set_index('procedure')
    assert (laws['predicted above'] == above).all()  # COMPUTE above 2.5e11 and 5e11
    assert (laws['fitted points'] == len(COMPUTE) - above).all()
    assert 'd' not in laws.columns  # the saturation law


def test_fig3_fits_error_against_samples_seen(files, reported):
  csv, _ = files
  (result,) = paper.run(csv, groups=['fig3_imagenet'], bootstrap=0, log=lambda line: None)
  samples = np.geomspace(1e7, 1e9, 5)
  for fitted in result.laws:
    # Every cosine run is at D = 1e3·C^0.5: the law in D must give the law in C back.
    truth = law(LAWS['imagenet1k'][fitted.spec.arch, paper_groups.DATACOMP], (samples / 1e3) ** 2)
    np.testing.assert_allclose(fitted.proc.fit.predict(samples), truth, atol=0.01)
    assert fitted.proc.frontier['x'].max() == pytest.approx(1e9)  # samples, not 1e12 GFLOPs
  _, out = reported
  comparisons = read_table(out, 'fig3_imagenet', 'comparisons')
  assert {'P(A beats B)@1.28e+10', 'P(A beats B)@2.56e+10'} <= set(comparisons.columns)
  report = (out / 'report.md').read_text()
  assert 'held-out check fitted up to D = 1.3e+09' in report
  assert 'saturation_both E = a·(D + b)^c + d' in report  # the law's variable is D, not C
  legend = result.laws[0].proc.curve()
  assert 'E = a·(D + b)^c + d' in dataclasses.replace(legend, variable='D').law_label()


def test_fig3_leaves_out_h_models_and_caps_samples_not_compute(files):
  csv, _ = files
  frame = paper_rows()
  clip = frame[(frame.namespace == 'clip') & (frame.downstream_dataset == 'imagenet1k')]
  last = clip[clip.epoch == clip.total_epochs].head(3)
  # main.py drops H- models only where x is samples seen; --max_x 1.3e10 caps samples there.
  huge = last.assign(model='ViT-H-14', acc1=0.99)
  long_run = last.head(1).assign(total_samples_seen=2e10, acc1=0.99)
  long_run['gflops_total'] = long_run['gflops'] * 2e10
  long = table.import_paper_csv(_write(pd.concat([frame, huge, long_run]), csv))
  fig3 = paper_groups.get_groups(['fig3_imagenet'])[0]
  points = paper_points.eligible(long, fig3)
  assert not points['model'].str.contains('H-').any()
  assert points['samples_seen'].max() <= 1.3e10
  assert (points['x'] == points['samples_seen']).all()
  fig1 = paper_groups.get_groups(['fig1_imagenet'])[0]
  assert paper_points.eligible(long, fig1)['model'].str.contains('H-').any()
  prepared, _ = paper_points.prepare(fig3, {'csv': long})
  assert {p.spec.label for p in prepared} == {'clip', 'mammut'}


def _write(frame, like):
  path = like.parent / 'fig3.csv'
  frame.to_csv(path, index=False)
  return path


def test_progress_is_printed_per_group(files, tmp_path, capsys):
  csv, parquet = files
  argv = ['--results', str(csv), '--parquet', str(parquet), '--out', str(tmp_path)]
  assert paper_cli(argv + ['--groups', 'fig1_imagenet', 'fig8_ade20k', '--bootstrap', '0']) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].startswith('[ 1/2] fig1_imagenet') and 'mammut vs clip: cross at' in lines[0]
  assert lines[1].startswith('[ 2/2] fig8_ade20k') and 'wrote' in lines[2]
  # without a bootstrap there are no intervals, but the laws and crossovers are there
  assert not (tmp_path / 'tables' / 'fig1_imagenet.intervals.csv').read_text().count('low')


def bad_run(tmp_path, frame, parquet=None, groups=()):
  csv = tmp_path / 'bad.csv'
  frame.to_csv(csv, index=False)
  argv = ['--results', str(csv), '--out', str(tmp_path / 'out'), '--bootstrap', '0']
  argv += ['--parquet', str(parquet)] if parquet else []
  argv += ['--groups', *groups] if groups else []
  code = paper_cli(argv)
  summary = json.loads((tmp_path / 'out' / 'paper.json').read_text())
  return code, {g['name']: g['skipped'] for g in summary['groups']}


def test_absent_namespaces_datasets_and_thin_groups_are_skipped_with_reasons(tmp_path, capsys):
  frame = paper_rows()
  frame = frame[(frame.namespace != 'siglip') & (frame.pretrain_dataset != paper_groups.RELAION)]
  coca = frame.namespace == 'coca'
  three_runs = np.isclose(frame.gflops_total.to_numpy()[:, None], COMPUTE[:3], rtol=1e-9).any(1)
  keep = ~coca | three_runs  # CoCa's three cheapest runs only
  code, skipped = bad_run(tmp_path, frame[keep])
  assert code == 0
  assert skipped['fig5_siglip_clip'] == (
      "siglip: no points with arch='siglip'; choose from ['cap', 'clip', 'coca', 'mammut']"
  )
  assert skipped['fig2_relaion_coco'] == (
      "clip: no points with pretrain_dataset='relaion2b-en'; choose from ['datacomp_1b']"
  )
  assert skipped['fig7_clip_imagenet'].startswith('relaion2b-en: no points with pretrain_dataset')
  assert skipped['fig9_coca_mammut'] == (
      'coca: only 3 frontier points up to 1e+11 for the 4 parameters of saturation_both'
  )
  assert skipped['fig8_ade20k'] == 'no --parquet file given'
  assert skipped['fig1_imagenet'] is None and skipped['fig4_const_coco'] is None
  printed = capsys.readouterr().out
  assert 'fig9_coca_mammut       skipped: coca: only 3 frontier points' in printed
  report = (tmp_path / 'out' / 'report.md').read_text()
  assert "**Skipped:** siglip: no points with arch='siglip'" in report


def test_a_table_missing_columns_skips_its_groups_and_the_parquet_still_runs(files, tmp_path):
  _, parquet = files
  frame = paper_rows().drop(columns=['warmup'])
  groups = ('fig1_imagenet', 'fig8_ade20k')
  code, skipped = bad_run(tmp_path, frame, parquet, groups)
  assert code == 0 and skipped['fig8_ade20k'] is None
  assert "is missing columns ['warmup']" in skipped['fig1_imagenet']
  assert '\n' not in skipped['fig1_imagenet']


def test_fig11_needs_the_eval_type_it_selects(tmp_path):
  frame = paper_rows()
  _, skipped = bad_run(tmp_path, frame.drop(columns=['eval_type']), groups=('fig11_cap_mammut',))
  assert skipped['fig11_cap_mammut'] == (
      'the table has no eval_type column for --eval_type log_likelihood'
  )
  frame = frame[frame.eval_type != 'log_likelihood']
  _, skipped = bad_run(tmp_path, frame, groups=('fig11_cap_mammut',))
  assert skipped['fig11_cap_mammut'] == (
      "no imagenet1k rows with eval_type 'log_likelihood'; the table has "
      "['contrastive', 'similarity']"
  )


def test_nothing_to_fit_and_unknown_groups_are_one_line_errors(files, tmp_path, capsys):
  frame = paper_rows().drop(columns=['warmup'])
  code, _ = bad_run(tmp_path, frame, groups=('fig1_imagenet',))
  assert code == 2
  err = capsys.readouterr().err
  assert err.startswith('error: no group could be fitted') and err.count('\n') == 1
  csv, _ = files
  argv = ['--results', str(csv), '--out', str(tmp_path), '--groups', 'fig99']
  assert paper_cli(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: unknown groups ['fig99']; choose from ['fig1_imagenet'")
  assert err.count('\n') == 1
  (tmp_path / 'file').write_text('')
  assert paper_cli(['--results', str(csv), '--out', str(tmp_path / 'file')]) == 2
  err = capsys.readouterr().err
  assert err == f'error: --out {tmp_path / "file"} is a file; give a directory for the report\n'
  missing = tmp_path / 'absent.csv.gz'
  argv = ['--results', str(missing), '--out', str(tmp_path / 'out')]
  assert paper_cli(argv + ['--groups', 'fig1_coco']) == 2
  report = (tmp_path / 'out' / 'report.md').read_text()
  assert f'**Skipped:** no results table at {missing}' in report


def test_groups_follow_the_paper_scripts():
  by_name = {g.name: g for g in paper_groups.GROUPS}
  assert by_name['fig4_const_imagenet'].schedule == 'const'
  assert math.isinf(by_name['fig4_const_imagenet'].max_samples)
  assert by_name['fig5_siglip_clip'].form == 'saturation'
  assert by_name['fig6_optimal'].frontier == 'pareto_naive'
  assert (by_name['fig9_clip_siglip'].max_x, by_name['fig9_clip_siglip'].max_samples) == (1e10, 1e9)
  assert {p.fit_up_to for p in by_name['fig5_coca_mammut_clip'].procedures} == {1e10, 1e11, 1e12}
  # fig7's MS-COCO calls pass no --max_samples_seen (the ImageNet ones pass 1e13 and 1e10)
  assert math.isinf(by_name['fig7_mammut_coco'].max_samples)
  assert by_name['fig7_mammut_imagenet'].max_samples == 1e10
  assert by_name['fig10_imagenet_r'].task.name == 'imagenet-r_test'
  fig3 = by_name['fig3_coco']  # --x_col total_samples_seen: max_x and the mapping in samples
  assert (fig3.x, fig3.frontier, fig3.max_x, fig3.max_samples) == (
      'samples',
      'pareto_naive',
      1.3e10,
      1.3e10,
  )
  assert {p.fit_up_to for p in fig3.procedures} == {1.3e10}
  assert all(g.x == 'compute' for g in paper_groups.GROUPS if not g.name.startswith('fig3'))
  assert {by_name[n].task.metric for n in paper_groups.GROUP_NAMES if 'fig10' in n} == {'acc1'}
  assert by_name['fig11_cap_mammut'].eval_type == 'log_likelihood'
  assert by_name['fig1_imagenet'].eval_type is None  # no other script passes --eval_type
  assert math.isinf(by_name['fig11_cap_mammut'].procedures[0].fit_up_to)  # cap: not mapped
  fig12 = by_name['fig12_coco_2p5e11']
  assert (fig12.form, fig12.max_x, fig12.max_samples) == ('saturation', 2e12, 1e10)
  assert {p.fit_up_to for p in fig12.procedures} == {2.5e11}
