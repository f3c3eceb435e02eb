#!/usr/bin/env bash
# Deletes the TPU VM (or its queued resource, which deletes the VM with it). Results not
# copied to a bucket (tpu_scripts/results.sh push) are lost with the VM's disks.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/delete.sh [--queued]
  --queued  delete the queued resource QR_ID and the TPU VM it made
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
  run gcloud compute tpus queued-resources delete "$QR_ID" ${SCOPE[@]+"${SCOPE[@]}"} \
    --force --quiet
else
  run gcloud compute tpus tpu-vm delete "$TPU_NAME" ${SCOPE[@]+"${SCOPE[@]}"} --quiet
fi
