#!/usr/bin/env bash
# Shows the log of a background job started by launch.sh (default: the newest) on a worker,
# or any file under CODE_DIR, e.g. a run's train log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/logs.sh [--name NAME | --file PATH] [--lines N] [--follow] [--worker N]
  --name NAME  ~/scaling-vlm-logs/NAME.log (default: the newest log there)
  --file PATH  a file, relative to CODE_DIR or absolute (e.g. SWEEP_DIR/RUN/train-HOST.log)
  --follow     keep printing as it grows (Ctrl-C to stop)
$COMMON_USAGE
USAGE
}

WORKER=0 NAME="" FILE="" LINES=100 FOLLOW=0
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --name) [[ $# -ge 2 ]] || die "$1 needs a value"; NAME="$2" && shift 2 ;;
    --file) [[ $# -ge 2 ]] || die "$1 needs a value"; FILE="$2" && shift 2 ;;
    --lines) [[ $# -ge 2 ]] || die "$1 needs a value"; LINES="$2" && shift 2 ;;
    --follow) FOLLOW=1 && shift ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings
[[ "$LINES" =~ ^[0-9]+$ ]] || die "--lines=$LINES is not a number"

tail="tail -n $LINES"
if ((FOLLOW)); then tail+=" -F"; fi
if [[ -n "$FILE" ]]; then
  tpu_ssh "cd $(remote_home "$CODE_DIR") && $tail $(quote "$FILE")"
elif [[ -n "$NAME" ]]; then
  tpu_ssh "$tail $(remote_home "$LOG_DIR")/$(quote "$NAME.log")"
else
  tpu_ssh "$tail \"\$(ls -t $(remote_home "$LOG_DIR")/*.log | head -n 1)\""
fi
