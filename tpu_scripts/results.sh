#!/usr/bin/env bash
# Copies results between the TPU workers, the bucket and this machine with
# `gcloud storage rsync` (only what changed is copied).
#   push: on a worker (default 0), a sweep or run folder -> gs://BUCKET/...
#   pull: here, gs://BUCKET/... -> a local folder (then python -m experiments.collect)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/results.sh push --from DIR [--to gs://BUCKET/PATH] [--no-checkpoints]
       tpu_scripts/results.sh pull --from gs://BUCKET/PATH --to DIR [--no-checkpoints]
  push  DIR on the worker (relative to CODE_DIR) to the bucket
        (default --to: gs://BUCKET/scaling-vlm/<basename of DIR>)
  pull  the bucket to DIR on this machine (no TPU needed)
  --no-checkpoints  leave checkpoints out (configs, metrics, logs and results only)
$COMMON_USAGE
USAGE
}

MODE="" WORKER=0 FROM="" TO="" EXCLUDE=()
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --from) [[ $# -ge 2 ]] || die "$1 needs a value"; FROM="$2" && shift 2 ;;
    --to) [[ $# -ge 2 ]] || die "$1 needs a value"; TO="$2" && shift 2 ;;
    --no-checkpoints) EXCLUDE=('--exclude=(^|.*/)checkpoints/.*') && shift ;;
    push | pull) [[ -z "$MODE" ]] || die "give push or pull once"; MODE="$1" && shift ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
[[ -n "$MODE" ]] || die "say push (worker -> bucket) or pull (bucket -> here)"
[[ -n "$FROM" ]] || die "$MODE needs --from"

if [[ "$MODE" == pull ]]; then
  [[ -n "$TO" ]] || die "pull needs --to DIR"
  [[ "$FROM" == gs://* ]] || die "pull --from=$FROM is not a gs:// path"
  run mkdir -p "$TO"
  run gcloud storage rsync --recursive ${EXCLUDE[@]+"${EXCLUDE[@]}"} "$FROM" "$TO"
  exit 0
fi
finish_settings
if [[ -z "$TO" ]]; then
  require BUCKET
  TO="gs://$BUCKET/scaling-vlm/$(basename "$FROM")"
fi
[[ "$TO" == gs://* ]] || die "push --to=$TO is not a gs:// path"
tpu_ssh "cd $(remote_home "$CODE_DIR") && $(quote gcloud storage rsync --recursive ${EXCLUDE[@]+"${EXCLUDE[@]}"} "$FROM" "$TO")"
