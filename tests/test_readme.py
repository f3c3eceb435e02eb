"""The README is a contract: its cheap commands run as written, its snippets run, and every
flag its commands name exists.

Commands are taken from the README's ```bash blocks (and tpu_scripts/README.md's), with
backslash continuations joined and trailing comments dropped. Those that cost seconds (the zoo,
dry runs, --help, --print_config) are run from the repository root exactly as written, with
this interpreter for `python`; every ```python block is run too. The rest (training on /data,
a TPU pod) cannot run here, so each `python -m MODULE [SUBCOMMAND]` line is held to its
module's own --help instead: a flag the module does not have fails the test.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
READMES = (ROOT / 'README.md', ROOT / 'tpu_scripts' / 'README.md')
# Commands that cost seconds: run as written.
CHEAP = re.compile(r'python -m scaling_vlm\.zoo|\s--dry-run(\s|$)|\s--help(\s|$)|--print_config')
# Placeholders a reader fills in: such a line is an example of a shape, not a command.
PLACEHOLDER = re.compile(r'SWEEP\.py|SWEEP_DIR|\[--|\.\.\.|TORCH_ENV|RUN/')
# Modules whose first word after the module is a subcommand with flags of its own.
SUBCOMMANDS = {'fitting': True, 'scaling_vlm.convert': True}


def _blocks(path: pathlib.Path, language: str) -> list[str]:
  return re.findall(rf'^```{language}\n(.*?)^```', path.read_text(), re.M | re.S)


def _commands(path: pathlib.Path) -> list[str]:
  """Each shell command of the file's bash blocks, continuations joined, comments dropped,
  with the block's `export` lines before it in front, as a reader's shell would have them."""
  out = []
  for block in _blocks(path, 'bash'):
    exports = []
    for line in block.replace('\\\n', ' ').splitlines():
      line = re.sub(r'\s+#.*$', '', line).strip()  # a comment after the command
      line = re.sub(r'\s+', ' ', line)
      if line.startswith('export '):
        exports.append(line)
      elif line and not line.startswith('#'):
        out.append('; '.join([*exports, line]))
  return out


def _python_commands() -> list[str]:
  found = []
  for path in READMES:
    for command in _commands(path):
      if re.search(r'(^|\s)python3? -m ', command) and not command.startswith('python3 -m venv'):
        found.append(command)
  return found


def _run(command: str, **kwargs) -> subprocess.CompletedProcess:
  """`command` as a shell would run it, with this interpreter for `python`."""
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)  # a reader's shell has none
  env['PATH'] = f'{pathlib.Path(sys.executable).parent}{os.pathsep}{env["PATH"]}'
  line = re.sub(r'(^|\s)python3? ', rf'\g<1>{shlex.quote(sys.executable)} ', command)
  return subprocess.run(
      line, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, **kwargs
  )


CHEAP_COMMANDS = [
    c for path in READMES for c in _commands(path) if CHEAP.search(c) and not PLACEHOLDER.search(c)
]


def test_the_readmes_have_cheap_commands_to_run():
  # The zoo, the budget of the paper's grid, the config keys, a TPU sweep's dry run at least.
  assert len(CHEAP_COMMANDS) >= 5, CHEAP_COMMANDS
  assert any('--print_config' in c for c in CHEAP_COMMANDS)
  assert any('paper_grid.py --dry-run' in c for c in CHEAP_COMMANDS)


@pytest.mark.parametrize('command', CHEAP_COMMANDS)
def test_cheap_commands_run_as_written(command):
  done = _run(command)
  assert done.returncode == 0, f'{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}'
  assert done.stdout.strip(), command  # each of them prints what it is for


@pytest.mark.parametrize('index', range(len(_blocks(READMES[0], 'python'))))
def test_python_snippets_run(index, tmp_path):
  snippet = _blocks(READMES[0], 'python')[index]
  # A snippet that defines a sweep's runs() is checked as the launcher checks a sweep file.
  check = (
      '\nif "runs" in globals():\n'
      '  from experiments import sweep\n'
      '  planned = sweep.expand(list(runs()))\n'
      '  print(len(planned), "runs planned")\n'
  )
  script = tmp_path / 'snippet.py'
  script.write_text(snippet + check)
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  # The sharding snippet's comment asks for 8 host devices; the others do not mind them.
  env['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'
  done = subprocess.run(
      [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
  )
  assert done.returncode == 0, f'{snippet}\n{done.stderr[-3000:]}'


@functools.cache
def _help(module: str, subcommand: str | None) -> str:
  argv = [sys.executable, '-m', module, *([subcommand] if subcommand else []), '--help']
  done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
  # absl's --help (the trainer's) exits 1 after printing; argparse's exits 0.
  assert done.returncode in (0, 1) and '--' in done.stdout + done.stderr, argv
  return done.stdout + done.stderr


def _flags_of(command: str) -> tuple[str, str | None, list[str]]:
  words = shlex.split(command.split('; ')[-1])
  start = words.index('-m') + 1
  module, rest = words[start], words[start + 1 :]
  subcommand = rest[0] if SUBCOMMANDS.get(module) and rest and not rest[0].startswith('-') else None
  flags = [w.split('=')[0] for w in rest if w.startswith('--')]
  # The trainer's --config.KEY flags are config keys, which --print_config checks.
  return module, subcommand, [f for f in flags if not f.startswith('--config.')]


@pytest.mark.parametrize('command', _python_commands())
def test_every_flag_a_readme_command_names_exists(command):
  module, subcommand, flags = _flags_of(command)
  text = _help(module, subcommand)
  missing = [f for f in flags if not re.search(rf'{re.escape(f)}\b', text)]
  assert not missing, f'{command}: {missing} not in `python -m {module} {subcommand or ""} --help`'
