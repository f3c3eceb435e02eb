#!/usr/bin/env bash
# Shows the TPU VM (state, workers' IPs) or its queued resource (WAITING_FOR_RESOURCES, ACTIVE).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/status.sh [--queued]
$COMMON_USAGE
USAGE
}

QUEUED=0
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --queued) QUEUED=1 && shift ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings

if ((QUEUED)); then
  run gcloud compute tpus queued-resources describe "$QR_ID" ${SCOPE[@]+"${SCOPE[@]}"}
else
  run gcloud compute tpus tpu-vm describe "$TPU_NAME" ${SCOPE[@]+"${SCOPE[@]}"}
fi
