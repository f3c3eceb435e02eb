# Shared by the tpu_scripts (sourced, not run): settings from flags or the environment,
# quoting, --dry-run, code sync, and ssh to the workers. Written for bash 3.2 and later
# (macOS included): empty arrays are expanded as ${a[@]+"${a[@]}"}.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings are read by the scripts that source this file

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TPU_NAME="${TPU_NAME:-}"
ZONE="${ZONE:-}"
PROJECT="${PROJECT:-}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-}"
RUNTIME_VERSION="${RUNTIME_VERSION:-}"
BUCKET="${BUCKET:-}"
QR_ID="${QR_ID:-}"                      # queued resource id (default: TPU_NAME-qr)
CODE_DIR="${CODE_DIR:-scaling-vlm}"     # on every worker, under the home folder
VENV_DIR="${VENV_DIR:-scaling-vlm-venv}" # on every worker, under the home folder
LOG_DIR="scaling-vlm-logs"              # background jobs' logs, under the home folder
DRY_RUN="${DRY_RUN:-0}"
WORKER="${WORKER:-all}"
SCOPE=()

COMMON_USAGE='Common flags (or environment variables):
  --tpu-name NAME (TPU_NAME)    --zone ZONE (ZONE)    --project PROJECT (PROJECT)
  --accelerator-type TYPE (ACCELERATOR_TYPE: v4-8, v5litepod-8 or v5e-8, v5p-8, v6e-8, ...)
  --runtime-version VERSION (RUNTIME_VERSION; default by TPU generation)
  --bucket BUCKET (BUCKET: name or gs://name)   --qr-id ID (QR_ID, default TPU_NAME-qr)
  --code-dir DIR (CODE_DIR, default scaling-vlm)   --venv-dir DIR (VENV_DIR)
  --worker all|N (WORKER)   --dry-run (DRY_RUN=1): print the commands, run nothing'

die() {
  echo "error: $*" >&2
  exit 2
}

# quote ARGS...: the arguments as one line the shell reads back as the same words.
quote() {
  local out=() arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      out+=("$arg")
    else
      out+=("'${arg//\'/\'\\\'\'}'")
    fi
  done
  printf '%s' "${out[*]-}"
}

# run COMMAND ARGS...: runs it, or with --dry-run prints it quoted.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '%s\n' "$(quote "$@")"
  else
    "$@"
  fi
}

# split_args ARGS...: ARGS=(...) with --flag=value split in two, up to a lone --.
split_args() {
  ARGS=()
  while (($#)); do
    if [[ "$1" == -- ]]; then
      ARGS+=("$@")
      return
    elif [[ "$1" == --*=* ]]; then
      ARGS+=("${1%%=*}" "${1#*=}")
    else
      ARGS+=("$1")
    fi
    shift
  done
}

# parse_common FLAG [VALUE]: a common flag; CONSUMED is how many words it took (0: not one).
parse_common() {
  CONSUMED=2
  case "$1" in
    --tpu-name | --zone | --project | --accelerator-type | --runtime-version | --bucket | \
      --qr-id | --code-dir | --venv-dir | --worker)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      ;;
  esac
  case "$1" in
    --tpu-name) TPU_NAME="$2" ;;
    --zone) ZONE="$2" ;;
    --project) PROJECT="$2" ;;
    --accelerator-type) ACCELERATOR_TYPE="$2" ;;
    --runtime-version) RUNTIME_VERSION="$2" ;;
    --bucket) BUCKET="$2" ;;
    --qr-id) QR_ID="$2" ;;
    --code-dir) CODE_DIR="$2" ;;
    --venv-dir) VENV_DIR="$2" ;;
    --worker) WORKER="$2" ;;
    --dry-run) CONSUMED=1 DRY_RUN=1 ;;
    *) CONSUMED=0 ;;
  esac
}

# unknown_flag FLAG: the error for a flag no case took, with the script's usage.
unknown_flag() {
  echo "error: unknown argument $(quote "$1")" >&2
  usage >&2
  exit 2
}

# require VAR...: each variable is set, or an error naming its flag and variable.
require() {
  local name flag
  for name in "$@"; do
    if [[ -z "${!name}" ]]; then
      flag="--$(echo "$name" | tr '[:upper:]_' '[:lower:]-')"
      die "$name is not set: pass $flag or export $name"
    fi
  done
}

# finish_settings: checks and derived settings, after the flags are parsed.
finish_settings() {
  require TPU_NAME
  SCOPE=()
  if [[ -n "$ZONE" ]]; then SCOPE+=("--zone=$ZONE"); fi
  if [[ -n "$PROJECT" ]]; then SCOPE+=("--project=$PROJECT"); fi
  QR_ID="${QR_ID:-$TPU_NAME-qr}"
  BUCKET="${BUCKET#gs://}"
  BUCKET="${BUCKET%/}"
  if [[ ! "$WORKER" =~ ^(all|[0-9]+)$ ]]; then
    die "--worker=$WORKER is not allowed; use all or a worker index (0, 1, ...)"
  fi
}

# check_accelerator: ACCELERATOR_TYPE is one gcloud knows; RUNTIME_VERSION defaults from it.
check_accelerator() {
  require ACCELERATOR_TYPE
  ACCELERATOR_TYPE="${ACCELERATOR_TYPE/#v5e-/v5litepod-}" # gcloud's name for v5e
  if [[ ! "$ACCELERATOR_TYPE" =~ ^(v4|v5litepod|v5p|v6e)-[0-9]+$ ]]; then
    die "ACCELERATOR_TYPE=$ACCELERATOR_TYPE is not allowed; use v4-N, v5litepod-N (or v5e-N)," \
      "v5p-N or v6e-N with N the TensorCores or chips, e.g. v5p-8, v6e-8, v4-32"
  fi
  if [[ -z "$RUNTIME_VERSION" ]]; then
    case "${ACCELERATOR_TYPE%%-*}" in
      v4) RUNTIME_VERSION=tpu-ubuntu2204-base ;;
      v5litepod) RUNTIME_VERSION=v2-alpha-tpuv5-lite ;;
      v5p) RUNTIME_VERSION=v2-alpha-tpuv5 ;;
      v6e) RUNTIME_VERSION=v2-alpha-tpuv6e ;;
    esac
  fi
}

# tpu_ssh COMMAND: COMMAND (one string for the worker's login shell) on WORKER.
tpu_ssh() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" ${SCOPE[@]+"${SCOPE[@]}"} \
    "--worker=$WORKER" "--command=$1"
}

# remote_home PATH: PATH under the worker's home folder, as a word of a remote command.
remote_home() {
  # shellcheck disable=SC2016  # $HOME expands on the worker
  printf '"$HOME"/%s' "$(quote "$1")"
}

# sync_code scp|bucket: the working tree (tracked and untracked, not ignored files) onto every
# worker, unpacked into CODE_DIR.
sync_code() {
  local via="$1" archive remote_archive unpack
  archive="${TMPDIR:-/tmp}/scaling-vlm-code-$$.tar.gz"
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "(cd $(quote "$REPO_ROOT") && git ls-files -z --cached --others --exclude-standard" \
      "| tar --null -T - -czf $(quote "$archive"))"
  else
    (cd "$REPO_ROOT" && git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' file; do
        if [[ -e "$file" ]]; then printf '%s\0' "$file"; fi
      done | tar --null -T - -czf "$archive")
    trap 'rm -f "$archive"' EXIT
  fi
  unpack="mkdir -p $(remote_home "$CODE_DIR") && tar -xzf scaling-vlm-code.tar.gz -C"
  unpack+=" $(remote_home "$CODE_DIR") && rm scaling-vlm-code.tar.gz"
  case "$via" in
    scp)
      run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:scaling-vlm-code.tar.gz" \
        ${SCOPE[@]+"${SCOPE[@]}"} "--worker=$WORKER"
      tpu_ssh "$unpack"
      ;;
    bucket)
      require BUCKET
      remote_archive="gs://$BUCKET/scaling-vlm/code.tar.gz"
      run gcloud storage cp "$archive" "$remote_archive"
      tpu_ssh "gcloud storage cp $(quote "$remote_archive") scaling-vlm-code.tar.gz && $unpack"
      ;;
    *) die "--via=$via is not allowed; use scp or bucket" ;;
  esac
}
