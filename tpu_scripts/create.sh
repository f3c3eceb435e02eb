#!/usr/bin/env bash
# Creates a Cloud TPU VM: on demand, spot, or through a queued resource (the way to get v5p,
# v6e and large slices when capacity is short).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/create.sh [--spot | --preemptible] [--queued [--valid-until-duration D]]
Creates TPU_NAME of ACCELERATOR_TYPE (v4-N, v5litepod-N, v5p-N, v6e-N).
  --spot         spot capacity (cheaper, preemptible at any time)
  --preemptible  legacy preemptible TPU VM (v4 and older; not with --queued)
  --queued       a queued resource QR_ID that provisions TPU_NAME when capacity frees up
  --valid-until-duration D  with --queued: give up after D (e.g. 6h)
$COMMON_USAGE
USAGE
}

SPOT=0 PREEMPTIBLE=0 QUEUED=0 VALID_UNTIL=""
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --spot) SPOT=1 && shift ;;
    --preemptible) PREEMPTIBLE=1 && shift ;;
    --queued) QUEUED=1 && shift ;;
    --valid-until-duration) [[ $# -ge 2 ]] || die "$1 needs a value"; VALID_UNTIL="$2" && shift 2 ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings
check_accelerator
if ((SPOT && PREEMPTIBLE)); then die "--spot and --preemptible exclude each other"; fi

capacity=()
if ((SPOT)); then capacity+=(--spot); fi
if ((QUEUED)); then
  if ((PREEMPTIBLE)); then die "--preemptible does not apply to queued resources; use --spot"; fi
  if [[ -n "$VALID_UNTIL" ]]; then capacity+=("--valid-until-duration=$VALID_UNTIL"); fi
  run gcloud compute tpus queued-resources create "$QR_ID" "--node-id=$TPU_NAME" \
    ${SCOPE[@]+"${SCOPE[@]}"} "--accelerator-type=$ACCELERATOR_TYPE" \
    "--runtime-version=$RUNTIME_VERSION" ${capacity[@]+"${capacity[@]}"}
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "Dry run: nothing ran; without --dry-run the command above queues $QR_ID." >&2
  else
    echo "Queued $QR_ID; tpu_scripts/status.sh --queued shows when $TPU_NAME is ACTIVE." >&2
  fi
else
  if [[ -n "$VALID_UNTIL" ]]; then die "--valid-until-duration needs --queued"; fi
  if ((PREEMPTIBLE)); then capacity+=(--preemptible); fi
  run gcloud compute tpus tpu-vm create "$TPU_NAME" ${SCOPE[@]+"${SCOPE[@]}"} \
    "--accelerator-type=$ACCELERATOR_TYPE" "--version=$RUNTIME_VERSION" \
    ${capacity[@]+"${capacity[@]}"}
fi
