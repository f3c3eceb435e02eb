#!/usr/bin/env bash
# Copies this working tree (tracked and untracked files git does not ignore) to every worker's
# CODE_DIR, directly (scp) or through the bucket. Run it again after editing code or sweeps.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/sync.sh [--via scp|bucket]
  --via scp     gcloud compute tpus tpu-vm scp to every worker (default)
  --via bucket  through gs://BUCKET/scaling-vlm/code.tar.gz (large slices: one upload)
$COMMON_USAGE
USAGE
}

VIA=scp
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --via) [[ $# -ge 2 ]] || die "$1 needs a value"; VIA="$2" && shift 2 ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings
sync_code "$VIA"
