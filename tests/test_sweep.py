"""Sweep files: expansion, validation before anything starts, and the dry-run budget, checked
against FLOPs computed here from the zoo, independently of experiments.budget."""

import os
import pathlib
import re

import pytest

from experiments import budget, launch, sweep
from scaling_vlm import flops, models
from scaling_vlm.train.config import parse_count

REPO = pathlib.Path(__file__).resolve().parents[1]
PAPER_GRID = str(REPO / 'experiments/sweeps/paper_grid.py')
TINY_LOCAL = str(REPO / 'experiments/sweeps/tiny_local.py')


def expected_budget(runs, peak):
  """(runs, GFLOPs, training FLOPs, hours at 40% MFU) from the Run objects alone."""
  gflops = train = 0.0
  for run in runs:
    model = run.config.split(':')[1]
    model = (
        model if run.config.startswith('configs/clip') or 'mammut' in model else 'mammut_' + model
    )
    arch = models.get_config(model)
    batch = run.overrides['train.global_batch']
    end = parse_count(run.overrides['train.samples'], 'samples') // batch * batch
    start = parse_count(run.overrides.get('cooldown.start', 0), 'start')
    gflops += flops.forward_flops(arch) / 1e9 * (end - start)
    train += flops.train_flops(arch) * (end - start)
  return len(runs), gflops, train, train / (peak * 0.4) / 3600


def total_line(output):
  line = output.strip().splitlines()[-1]
  match = re.fullmatch(
      r'total: (\d+) runs, (\S+) GFLOPs \(paper convention\), (\S+) training FLOPs, (\S+) '
      r'(\w+)-hours at 40% MFU',
      line,
  )
  assert match, line
  return int(match[1]), float(match[2]), float(match[3]), float(match[4]), match[5]


def test_paper_grid_dry_run_budget_matches_the_zoo(capsys):
  runs = sweep.load(PAPER_GRID)
  names = [r.name for r in runs]
  assert len(names) == len(set(names))
  # 3 datasets x 2 archs x 7 models x (10 cosine scales + 1 constant run + 6 cooldowns).
  assert len(runs) == 3 * 2 * 7 * 17
  scales = {r.overrides['train.samples'] for r in runs if r.overrides['optim.schedule'] == 'cosine'}
  assert {parse_count(s, 's') for s in scales} == {
      1_280_000, 6_400_000, 12_800_000, 30_720_000, 64_000_000, 128_000_000, 300_000_000,
      640_000_000, 1_280_000_000, 3_072_000_000,
  }  # fmt: skip
  shards = {r.overrides['data.shards'] for r in runs}
  assert {os.path.basename(s) for s in shards} == {'datacomp_1b', 'relaion2b-en', 'dfn2b'}
  assert launch.main([PAPER_GRID, '--dry-run', '--accelerator', 'v5p', '--mfu', '0.4']) == 0
  out = capsys.readouterr().out
  n, gflops, train, hours, unit = total_line(out)
  want = expected_budget(runs, 459e12)
  assert unit == 'v5p' and n == want[0]
  assert gflops == pytest.approx(want[1], rel=1e-3)
  assert train == pytest.approx(want[2], rel=1e-3)
  assert hours == pytest.approx(want[3], rel=1e-3)
  # A cooldown branch costs only its last 20%: its line shows the samples it trains.
  line = next(l for l in out.splitlines() if l.startswith('clip_ViT-B-32_dfn_cooldown_1.28B '))
  assert ' 256M ' in line and ' cooldown ' in line


def test_tiny_local_budget_and_other_accelerators(capsys):
  runs = sweep.load(TINY_LOCAL)
  assert launch.main([TINY_LOCAL, '--dry-run', '--accelerator', 'h100', '--mfu', '0.4']) == 0
  n, gflops, train, hours, unit = total_line(capsys.readouterr().out)
  want = expected_budget(runs, 989e12)
  assert (n, unit) == (want[0], 'h100')
  assert gflops == pytest.approx(want[1], rel=1e-3)
  assert hours == pytest.approx(want[3], rel=1e-3)
  # Halving MFU doubles the hours; the paper's compute axis does not move.
  planned = sweep.expand(runs)
  assert budget.hours(1e18, 'v6e', 0.2) == pytest.approx(2 * budget.hours(1e18, 'v6e', 0.4))
  assert budget.hours(1e18, 'v6e', 0.5) == pytest.approx(1e18 / (918e12 * 0.5) / 3600)
  assert sum(p.compute_gflops for p in planned) == pytest.approx(want[1], rel=1e-6)


def test_bad_budget_flags_name_the_choices(capsys):
  assert launch.main([TINY_LOCAL, '--dry-run', '--accelerator', 'v7']) == 2
  err = capsys.readouterr().err
  assert "--accelerator='v7' is not known" in err and "'v5p'" in err and "'h200'" in err
  assert launch.main([TINY_LOCAL, '--dry-run', '--mfu', '40']) == 2
  assert '--mfu=40.0 must be a fraction in (0, 1]' in capsys.readouterr().err


def write_sweep(tmp_path, body):
  path = tmp_path / 'sweep.py'
  path.write_text('from experiments.sweep import Run\n\ndef runs():\n' + body)
  return str(path)


TINY = "{'train.samples': 512, 'train.global_batch': 64, 'train.warmup': 64}"


def test_an_unknown_key_fails_before_anything_starts(tmp_path, capsys):
  path = write_sweep(
      tmp_path,
      f"  yield Run('good', 'configs/clip.py:tiny-1', {TINY})\n"
      f"  yield Run('bad', 'configs/clip.py:tiny-1', {{**{TINY}, 'optim.learning_rate': 1e-3}})\n",
  )
  out = tmp_path / 'sweep_dir'
  assert launch.main([path, '--out', str(out), '--backend', 'local']) == 2
  err = capsys.readouterr().err
  assert 'nothing was launched' in err
  assert "run 'bad': Unknown config key 'optim.learning_rate'. Did you mean " in err
  assert 'optim.lr,' in err  # the known keys are listed
  assert "run 'good'" not in err
  assert not out.exists()  # not even the good run's workdir


def test_every_problem_is_listed_at_once(tmp_path):
  path = write_sweep(
      tmp_path,
      f"  yield Run('a', 'configs/clip.py:tiny-1', {{**{TINY}, 'train.global_batch': 6.5}})\n"
      f"  yield Run('b', 'configs/clip.py:tiny-1', {{**{TINY}, 'train.warmup': 4096}})\n"
      f"  yield Run('a', 'configs/clip.py:tiny-1', {TINY})\n"
      f"  yield Run('c d', 'configs/nope.py:tiny-1', {TINY})\n",
  )
  with pytest.raises(sweep.SweepError) as error:
    sweep.expand(sweep.load(path))
  message = str(error.value)
  assert message.startswith('4 problem(s)')
  assert "run 'a': train.global_batch=6.5: expected int" in message
  assert "run 'b': train.warmup=4096 is not shorter than train.samples=512" in message
  assert "run 'a': the name is used twice" in message
  assert "run 'c d': a run name is a folder name" in message


CONST = (
    "{'train.samples': 1024, 'train.global_batch': 64, 'train.warmup': 64, "
    "'optim.schedule': 'const', 'checkpoint.milestones': '512,1024'}"
)


def branch(start, **extra):
  overrides = {
      'train.samples': 768,
      'train.global_batch': 64,
      'train.warmup': 64,
      'optim.schedule': 'cooldown',
      'cooldown.start': start,
      **extra,
  }
  return f"  yield Run('cool', 'configs/clip.py:tiny-1', {overrides!r}, parent='const')\n"


@pytest.mark.parametrize(
    'branch_line, message',
    [
        (branch(512), None),
        (branch(256), 'cooldown.start=256 is not a milestone of parent'),
        (branch(512, **{'train.global_batch': 32}), 'train.global_batch=32 differs from parent'),
        (branch(512, **{'optim.lr': 1e-2}), 'optim.lr=0.01 differs from parent'),
        (branch(1024), 'cooldown.start=1024 is not before the end of the run'),
        (
            "  yield Run('cool', 'configs/clip.py:tiny-1', {'optim.schedule': 'cosine'},"
            " parent='const')\n",
            "is a cooldown branch, but optim.schedule='cosine'",
        ),
    ],
)
def test_cooldown_branches_must_match_their_parent(tmp_path, branch_line, message):
  path = write_sweep(
      tmp_path, f"  yield Run('const', 'configs/clip.py:tiny-1', {CONST})\n" + branch_line
  )
  if message is None:
    planned = {p.name: p for p in sweep.expand(sweep.load(path), str(tmp_path / 'sd'))}
    # The launcher points cooldown.parent at the parent's workdir; the branch trains 256.
    assert planned['cool'].config.cooldown.parent == str(tmp_path / 'sd' / 'const')
    assert planned['cool'].samples == 256 and planned['const'].samples == 1024
    return
  with pytest.raises(sweep.SweepError, match=re.escape(message)):
    sweep.expand(sweep.load(path))


def test_a_branch_starts_where_its_parent_keeps_full_state(tmp_path):
  # Parameters alone at 512 (the parent names its branch points): AdamW cannot continue there.
  parent = CONST.replace("'512,1024'}", "'512,1024', 'checkpoint.branch_points': '1024'}")
  path = write_sweep(
      tmp_path, f"  yield Run('const', 'configs/clip.py:tiny-1', {parent})\n" + branch(512)
  )
  message = (
      "cooldown.start=512: parent 'const' keeps only its parameters there "
      "(checkpoint.branch_points='1024', full state at samples [1024])"
  )
  with pytest.raises(sweep.SweepError, match=re.escape(message)):
    sweep.expand(sweep.load(path))


def test_override_values_reach_the_config_as_the_cli_reads_them(tmp_path):
  path = write_sweep(
      tmp_path,
      "  yield Run('r', 'configs/clip.py:tiny-1', {'train.samples': 1.28e9, 'train.global_batch':"
      " 64, 'log.tensorboard': False, 'optim.lr': 3e-4, 'checkpoint.milestones': '1M,2M'})\n",
  )
  (planned,) = sweep.expand(sweep.load(path))
  assert '--config.train.samples=1280000000' in planned.flags
  assert '--config.log.tensorboard=False' in planned.flags
  c = planned.config
  assert (c.train.samples, c.log.tensorboard, c.optim.lr) == ('1280000000', False, 3e-4)
  assert planned.plan.total_steps == 1_280_000_000 // 64
