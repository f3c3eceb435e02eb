#!/usr/bin/env bash
# Sets up every worker: copies the code (sync.sh), makes a Python 3.11 virtual environment
# with jax[tpu] and requirements.txt (with uv, which also fetches Python 3.11 where the image
# has an older one), and optionally mounts the bucket with gcsfuse, which a multi-host slice
# needs for a SWEEP_DIR that all workers share.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/setup.sh [--via scp|bucket] [--skip-sync] [--mount-bucket [--mount-point DIR]]
  --via scp|bucket  how the code travels (see sync.sh; default scp)
  --skip-sync       only install
  --mount-bucket    mount gs://BUCKET at --mount-point (default /mnt/gcs) on every worker
  --python VERSION  Python of the environment (default 3.11)
$COMMON_USAGE
USAGE
}

VIA=scp SKIP_SYNC=0 MOUNT=0 MOUNT_POINT=/mnt/gcs PYTHON_VERSION=3.11
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --via) [[ $# -ge 2 ]] || die "$1 needs a value"; VIA="$2" && shift 2 ;;
    --skip-sync) SKIP_SYNC=1 && shift ;;
    --mount-bucket) MOUNT=1 && shift ;;
    --mount-point) [[ $# -ge 2 ]] || die "$1 needs a value"; MOUNT_POINT="$2" && shift 2 ;;
    --python) [[ $# -ge 2 ]] || die "$1 needs a value"; PYTHON_VERSION="$2" && shift 2 ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings

if ((!SKIP_SYNC)); then sync_code "$VIA"; fi

# One line per step, joined with &&: the first failure stops the worker's setup.
# shellcheck disable=SC2016  # $HOME, $USER and $(...) expand on the worker, not here
uv='"$HOME"/.local/bin/uv'
venv="$(remote_home "$VENV_DIR")"
code="$(remote_home "$CODE_DIR")"
steps=(
  "(command -v $uv >/dev/null || curl -LsSf https://astral.sh/uv/install.sh | sh)"
  "$uv venv --allow-existing --python $(quote "$PYTHON_VERSION") $venv"
  "$uv pip install --python $venv/bin/python --upgrade 'jax[tpu]'"
  "$uv pip install --python $venv/bin/python -r $code/requirements.txt"
  "$uv pip install --python $venv/bin/python --no-deps -e $code"
)
install="${steps[0]}"
for step in "${steps[@]:1}"; do install+=" && $step"; done
tpu_ssh "$install"

if ((MOUNT)); then
  require BUCKET
  mount_point="$(quote "$MOUNT_POINT")"
  # gcsfuse from Google's apt repository; directory renames (orbax finalises checkpoints by
  # renaming) need --rename-dir-limit.
  # shellcheck disable=SC2016
  mount_steps=(
    '(command -v gcsfuse >/dev/null || (echo "deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-$(lsb_release -cs) main" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null && sudo apt-get update -q && sudo apt-get install -y -q gcsfuse))'
    "sudo mkdir -p $mount_point"
    "sudo chown \"\$USER\" $mount_point"
    "(mountpoint -q $mount_point || gcsfuse --implicit-dirs --rename-dir-limit=200000 $(quote "$BUCKET") $mount_point)"
  )
  mount="${mount_steps[0]}"
  for step in "${mount_steps[@]:1}"; do mount+=" && $step"; done
  tpu_ssh "$mount"
fi
