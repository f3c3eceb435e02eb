#!/usr/bin/env bash
# Starts one training run, or a whole sweep, on every worker of the TPU VM at once (a run
# spans all hosts of the slice), in the background: it goes on after this shell disconnects.
# Each worker logs to ~/scaling-vlm-logs/NAME.log (tpu_scripts/logs.sh).
#
# A sweep runs `python -m experiments.launch SWEEP --backend local --out SWEEP_DIR` on every
# worker; with more than one host SWEEP_DIR must be shared (setup.sh --mount-bucket), so all
# hosts agree on which runs are finished. Relative paths are relative to CODE_DIR.
#
# A worker's ssh session starts with the worker's environment, not this shell's, so what the
# sweep file reads (SWEEP_ENV) and every --env is set in the job's command: `env NAME=VALUE`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The variables a sweep file reads, passed on when set here: SWEEP_ENV of experiments/launch.py
# (tests/test_tpu_scripts.py checks that the lists agree).
SWEEP_ENV=(DATA_ROOT)

usage() {
  cat <<USAGE
Usage: tpu_scripts/launch.sh --config SPEC --workdir DIR [--name NAME] [--env NAME=VALUE]...
           [-- TRAIN_FLAGS...]
       tpu_scripts/launch.sh --sweep FILE --out SWEEP_DIR [--name NAME] [--env NAME=VALUE]...
           [-- LAUNCH_FLAGS...]
  --config SPEC    e.g. configs/clip.py:ViT-B-32; TRAIN_FLAGS e.g. --config.train.samples=1.28e9
  --workdir DIR    the run's workdir on the workers (relative to CODE_DIR or absolute)
  --sweep FILE     a sweep file inside the repository, e.g. experiments/sweeps/paper_grid.py
  --out SWEEP_DIR  the sweep's folder on the workers, one workdir per run
  --name NAME      the log's name (default: the workdir's or the sweep file's)
  --env NAME=VALUE set for the job on every worker (repeatable); ${SWEEP_ENV[*]} goes
                   without --env too, when set here
$COMMON_USAGE
USAGE
}

CONFIG="" WORKDIR="" SWEEP="" OUT="" NAME="" EXTRA=() JOB_ENV=()
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --config | --workdir | --sweep | --out | --name)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      case "$1" in
        --config) CONFIG="$2" ;; --workdir) WORKDIR="$2" ;; --sweep) SWEEP="$2" ;;
        --out) OUT="$2" ;; --name) NAME="$2" ;;
      esac
      shift 2
      ;;
    --env)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      [[ "$2" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] ||
        die "--env $(quote "$2") is not NAME=VALUE; e.g. --env DATA_ROOT=/mnt/gcs/data"
      JOB_ENV+=("$2") && shift 2
      ;;
    --) shift && EXTRA=("$@") && break ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings
if [[ "$WORKER" != all ]]; then die "--worker=$WORKER: a run needs every worker (all)"; fi

# forward_env: FORWARD=(NAME=VALUE...): SWEEP_ENV as set here, less the names an --env sets,
# then every --env.
forward_env() {
  local item key given
  FORWARD=()
  for key in "${SWEEP_ENV[@]}"; do
    given=0
    for item in ${JOB_ENV[@]+"${JOB_ENV[@]}"}; do
      if [[ "${item%%=*}" == "$key" ]]; then given=1; fi
    done
    if ((!given)) && [[ -n "${!key+set}" ]]; then FORWARD+=("$key=${!key}"); fi
  done
  FORWARD+=(${JOB_ENV[@]+"${JOB_ENV[@]}"})
}

python="$(remote_home "$VENV_DIR")/bin/python"
if [[ -n "$CONFIG" && -z "$SWEEP" ]]; then
  [[ -n "$WORKDIR" ]] || die "--config needs --workdir DIR"
  NAME="${NAME:-$(basename "$WORKDIR")}"
  job="$python -m scaling_vlm.train $(quote "--config=$CONFIG" "--workdir=$WORKDIR")"
elif [[ -n "$SWEEP" && -z "$CONFIG" ]]; then
  [[ -n "$OUT" ]] || die "--sweep needs --out SWEEP_DIR"
  NAME="${NAME:-$(basename "$SWEEP" .py)}"
  job="$python -m experiments.launch $(quote "$SWEEP" --backend local "--out=$OUT")"
  # One log per host in each run's folder when the hosts share SWEEP_DIR.
  # shellcheck disable=SC2016
  job+=' --log-name "train-$(hostname).log"'
else
  die "give either --config SPEC --workdir DIR, or --sweep FILE --out SWEEP_DIR"
fi
if ((${#EXTRA[@]})); then job+=" $(quote "${EXTRA[@]}")"; fi
forward_env
if ((${#FORWARD[@]})); then job="env $(quote "${FORWARD[@]}") $job"; fi
log="$(remote_home "$LOG_DIR")/$(quote "$NAME.log")"
pid="$(remote_home "$LOG_DIR")/$(quote "$NAME.pid")"
tpu_ssh "cd $(remote_home "$CODE_DIR") && mkdir -p $(remote_home "$LOG_DIR") && (setsid nohup $job > $log 2>&1 < /dev/null & echo \$! > $pid)"
if [[ "$DRY_RUN" == 1 ]]; then exit 0; fi
echo "Started $NAME on $TPU_NAME: tpu_scripts/logs.sh --name $(quote "$NAME") --follow to watch," \
  "tpu_scripts/stop.sh --name $(quote "$NAME") to stop" >&2
