"""Results tables: our format, the paper's two importers, the filters, and bad input."""

import numpy as np
import pandas as pd
import pytest

from fitting import filters, table


def run_rows(run_id, schedule, total, checkpoints, gflops=10.0, warmup=100, batch=1000):
  """One run's imagenet1k acc1 rows at the given samples-seen checkpoints."""
  return [
      dict(
          run_id=run_id,
          arch='clip',
          model='ViT-S-32',
          pretrain_dataset='dfn',
          lr_schedule=schedule,
          lr=1e-3,
          global_batch_size=batch,
          warmup=warmup,
          total_samples=total,
          samples_seen=s,
          gflops_per_sample=gflops,
          compute_gflops=gflops * s,
          params=1e8,
          task='imagenet1k',
          metric='acc1',
          value=0.1 + 0.05 * np.log10(s),
      )
      for s in checkpoints
  ]


@pytest.fixture
def results(tmp_path):
  rows = (
      run_rows('cos', 'cosine', 1e7, [5e6, 1e7])
      + run_rows('const', 'const', 1e7, [5e4, 2e5, 1e7])  # warmup ends at 1e5 samples
      + run_rows('huge', 'cosine', 2e11, [2e11])  # beyond max_samples
  )
  path = tmp_path / 'results.parquet'
  pd.DataFrame(rows).to_parquet(path)
  return path


def test_filters_follow_the_paper(results):
  points = filters.eligible_points(table.read_results(results), 'imagenet1k', 'acc1')
  kept = sorted(zip(points['run_id'], points['samples_seen']))
  # cosine: final checkpoint only; constant: every checkpoint after warmup; huge: too many samples
  assert kept == [('const', 2e5), ('const', 1e7), ('cos', 1e7)]
  np.testing.assert_allclose(points['error'], 1 - points['value'])
  np.testing.assert_allclose(points['x'], points['samples_seen'] * 10.0)


@pytest.mark.parametrize('branch, none', [(8e5, np.nan), ('const@800000', '')])
def test_cooldown_branches_count_only_at_their_end(branch, none):
  # scaling_vlm writes 'parent@samples' and '' for rows off any branch; numbers work too
  rows = run_rows('const', 'const', 1e7, [2e5, 1e6]) + run_rows('cool', 'const', 1e6, [9e5, 1e6])
  frame = pd.DataFrame(rows).assign(cooldown_from=none)
  frame['cooldown_from'] = frame['cooldown_from'].astype(object)
  frame.loc[frame.run_id == 'cool', 'cooldown_from'] = branch
  points = filters.eligible_points(frame, 'imagenet1k', 'acc1')
  assert sorted(zip(points['run_id'], points['samples_seen'])) == [
      ('const', 2e5),
      ('const', 1e6),
      ('cool', 1e6),
  ]
  np.testing.assert_array_equal(filters.cooldown_samples(frame), [np.nan, np.nan, 8e5, 8e5])


def test_imagenet_drops_failed_high_compute_points():
  rows = run_rows('ok', 'cosine', 1e10, [1e10], gflops=50.0) + run_rows(
      'failed', 'cosine', 1e10, [1e10], gflops=40.0
  )
  frame = pd.DataFrame(rows)
  frame.loc[frame.run_id == 'failed', 'value'] = 0.2  # error 0.8 at 4e11 GFLOPs
  points = filters.eligible_points(frame, 'imagenet1k', 'acc1')
  assert list(points['run_id']) == ['ok']


def test_frontier_points_of_a_procedure():
  rows = sum((run_rows(f'r{i}', 'cosine', s, [s]) for i, s in enumerate([1e6, 1e7, 1e8])), [])
  frame = pd.DataFrame(rows)
  frame.loc[1, 'value'] = 0.0  # the middle run is worse than the first
  points = filters.eligible_points(frame, 'imagenet1k', 'acc1')
  front = filters.frontier_points(points)
  assert list(front['run_id']) == ['r0', 'r2']
  assert list(filters.frontier_points(points, 'pareto_naive')['run_id']) == ['r0', 'r2']


def test_import_paper_csv(tmp_path):
  wide = pd.DataFrame(
      {
          'model': ['mammut_ViT-B-32', 'ViT-B-32'],
          'namespace': ['s1', 's2'],
          'model_simple': ['B-32', 'B-32'],
          'pretrain_dataset': ['datacomp', 'relaion'],
          'downstream_dataset': ['imagenet1k', 'mscoco_captions'],
          'lr_scheduler': ['cosine', 'const'],
          'eval_type': ['zeroshot_classification', 'zeroshot_retrieval'],
          'total_samples_seen': [1.28e9, 1.28e9],
          'epoch': [10, 5],
          'total_epochs': [10, 10],
          'gflops': [26.91, 14.54],
          'gflops_total': [26.91 * 1.28e9, 14.54 * 6.4e8],
          'global_batch_size': [8192, 8192],
          'warmup': [1000, 1000],
          'samples_seen_scale_pretty': ['1.28B', '1.28B'],
          'acc1': [0.6, np.nan],
          'image_retrieval_recall@5': [np.nan, 0.5],
          'text_retrieval_recall@5': [np.nan, 0.6],
          'contrastive_loss': [np.nan, np.nan],
      }
  )
  path = tmp_path / 'all_results.csv.gz'
  wide.to_csv(path, index=False)
  long = table.import_paper_csv(path)
  assert list(long.columns) == [*table.COLUMNS, 'eval_type']
  assert sorted(long['metric']) == ['acc1', 'image_retrieval_recall@5', 'text_retrieval_recall@5']
  coco = long[long.metric == 'image_retrieval_recall@5'].iloc[0]
  assert coco.samples_seen == 6.4e8 and coco.compute_gflops == pytest.approx(14.54 * 6.4e8)
  assert coco.arch == 'clip' and long[long.metric == 'acc1'].iloc[0].arch == 'mammut'


def test_import_paper_parquet(tmp_path):
  wide = pd.DataFrame(
      {
          'model': ['ViT-S-32'] * 2,
          'namespace': ['s1'] * 2,
          'pretrain_dataset': ['dfn'] * 2,
          'downstream_dataset': ['ade20k'] * 2,
          'lr_scheduler': ['const'] * 2,
          'samples_seen': [1e6, 2e6],
          'global_batch_size': [256] * 2,
          'warmup': [10] * 2,
          'lr': [1e-3] * 2,
          'model_gflops': [4.0] * 2,
          'gflops': [4e6, 8e6],
          'miou': [0.1, 0.2],
          # What the released file holds besides: numbers about the run, not metrics.
          'epoch': [1, 1],
          'gpus': [8, 8],
          'model_mparams': [62.3, 62.3],
          'main_metric_value': [0.1, 0.2],
      }
  )
  path = tmp_path / 'run.parquet'
  wide.to_parquet(path)
  long = table.import_paper_parquet(path)
  assert list(long['compute_gflops']) == [4e6, 8e6]  # already total compute
  assert set(long['metric']) == {'miou'}
  assert list(long['params']) == pytest.approx([62.3e6, 62.3e6])
  # Every row is a run's final evaluation: its own total, so both runs are points (a model's
  # largest samples_seen as everyone's total would leave only its longest run).
  assert list(long['total_samples']) == [1e6, 2e6]
  assert long['run_id'].nunique() == 2
  kept = filters.eligible_points(long.assign(lr_schedule='cosine'), 'ade20k', 'miou', min_x=0)
  assert list(kept['samples_seen']) == [1e6, 2e6]


def test_bad_input_names_the_problem(results, tmp_path):
  frame = table.read_results(results)
  with pytest.raises(ValueError, match=r"missing columns \['value'\]"):
    frame.drop(columns='value').to_csv(tmp_path / 'bad.csv', index=False)
    table.read_results(tmp_path / 'bad.csv')
  with pytest.raises(ValueError, match="unknown task 'imagenet'"):
    filters.eligible_points(frame, 'imagenet', 'acc1')
  with pytest.raises(ValueError, match="no metric 'acc5'"):
    filters.eligible_points(frame, 'imagenet1k', 'acc5')
  with pytest.raises(ValueError, match='NaN value'):
    filters.eligible_points(frame.assign(value=np.nan), 'imagenet1k', 'acc1')
  with pytest.raises(ValueError, match='must be positive'):
    filters.eligible_points(frame.assign(compute_gflops=0.0), 'imagenet1k', 'acc1')
  with pytest.raises(FileNotFoundError):
    table.read_results(tmp_path / 'absent.csv')
  # Tiny runs sit below the paper's 1e6 GFLOPs floor: say so, not 'choose from []'.
  with pytest.raises(ValueError, match=r'keep none of the .* rows .*min_x=1e\+12'):
    filters.eligible_points(frame, 'imagenet1k', 'acc1', min_x=1e12)


def test_a_table_without_any_cooldown_reads_as_constant_runs(tmp_path):
  # Our results.csv leaves cooldown_from empty off branches; a column of only empty cells
  # comes back from CSV as all-NaN floats, which must still mean "no branch".
  frame = pd.DataFrame(run_rows('const', 'const', 1e7, [2e5, 1e6])).assign(cooldown_from='')
  frame.to_csv(tmp_path / 'results.csv', index=False)
  read = table.read_results(str(tmp_path / 'results.csv'))
  assert np.isnan(filters.cooldown_samples(read)).all()
  assert filters.is_constant(read).all()


def paper_csv_row(**changes):
  """One row of the paper's wide all_results.csv.gz."""
  row = dict(
      model='ViT-B-32',
      namespace='clip',
      pretrain_dataset='datacomp_1b',
      downstream_dataset='imagenet1k',
      lr_scheduler='cosine',
      total_samples_seen=1.28e9,
      epoch=10,
      total_epochs=10,
      gflops=14.5,
      global_batch_size=8192,
      warmup=1000,
      lr=1e-3,
      acc1=0.5,
  )
  return row | changes


def test_the_paper_namespaces_are_architectures_and_coca_or_siglip_is_not_clip(tmp_path):
  names = {
      'clip': 'ViT-B-32',
      'mammut': 'mammut_ViT-B-32',
      'coca': 'coca_ViT-B-32',
      'siglip': 'ViT-B-32-SigLIP',
      'cap': 'cap_ViT-B-32',
  }
  rows = [paper_csv_row(model=model, namespace=namespace) for namespace, model in names.items()]
  rows.append(dict(rows[2], namespace='', model='coca_ViT-S-32'))  # no namespace: by its name
  path = tmp_path / 'all_results.csv'
  pd.DataFrame(rows).to_csv(path, index=False)
  long = table.import_paper_csv(path)
  assert list(long['arch']) == ['clip', 'mammut', 'coca', 'siglip', 'cap', 'coca']
  points = filters.eligible_points(long, 'imagenet1k', 'acc1', min_x=0.0)
  assert list(filters.select(points, arch='clip')['model']) == ['ViT-B-32']
  with pytest.raises(ValueError, match=r"no points with arch='vit'; choose from \['cap', 'clip'"):
    filters.select(points, arch='vit')


def test_the_paper_eval_type_is_carried_where_the_table_has_it(tmp_path):
  # fig11 selects on it (--eval_type); tables without the column import as before
  rows = [
      paper_csv_row(eval_type='similarity'),
      paper_csv_row(eval_type='log_likelihood', acc1=0.4),
  ]
  path = tmp_path / 'all_results.csv'
  pd.DataFrame(rows).to_csv(path, index=False)
  long = table.import_paper_csv(path)
  assert list(long['eval_type']) == ['similarity', 'log_likelihood']
  points = filters.eligible_points(long, 'imagenet1k', 'acc1', min_x=0.0)
  assert list(filters.select(points, eval_type='log_likelihood')['value']) == [0.4]
  pd.DataFrame(rows).drop(columns='eval_type').to_csv(path, index=False)
  long = table.import_paper_csv(path)
  assert list(long.columns) == list(table.COLUMNS) and list(long['value']) == [0.5, 0.4]


def test_a_paper_run_id_is_one_training_run(tmp_path):
  rows = [
      paper_csv_row(epoch=5),  # one run's two checkpoints: one id
      paper_csv_row(),
      paper_csv_row(total_samples_seen=3e9),  # the same model trained longer
      paper_csv_row(lr=2e-3),
      paper_csv_row(global_batch_size=4096),
      paper_csv_row(warmup=500),
      paper_csv_row(lr_scheduler='const'),
      paper_csv_row(pretrain_dataset='relaion2b-en'),
  ]
  path = tmp_path / 'all_results.csv'
  pd.DataFrame(rows).to_csv(path, index=False)
  ids = list(table.import_paper_csv(path)['run_id'])
  assert ids[0] == ids[1]
  assert len(set(ids)) == len(rows) - 1
  # Runs alike in every setting but their nodes differ only in their log folder's `name`.
  rows = [paper_csv_row(name='datacomp_s1.28B_n8'), paper_csv_row(name='datacomp_s1.28B_n16')]
  pd.DataFrame(rows).to_csv(path, index=False)
  assert table.import_paper_csv(path)['run_id'].nunique() == 2


def test_const_cooldown_runs_count_only_at_their_end():
  # The paper's filter_data keeps 'const-cooldown' runs at epoch == total_epochs, as cosine.
  rows = run_rows('cool', 'const-cooldown', 1e7, [2e5, 1e7])
  rows += run_rows('const', 'const', 1e7, [2e5])
  points = filters.eligible_points(pd.DataFrame(rows), 'imagenet1k', 'acc1')
  assert sorted(zip(points['run_id'], points['samples_seen'])) == [('const', 2e5), ('cool', 1e7)]
  assert [filters.is_constant_schedule(s) for s in ('const', 'Constant', 'const-cooldown')] == [
      True,
      True,
      False,
  ]
