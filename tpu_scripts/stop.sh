#!/usr/bin/env bash
# Stops a background job of launch.sh on every worker with SIGTERM: a trainer saves a
# checkpoint and exits, a sweep's launcher passes SIGTERM on to its runs and starts no more.
# Launching the same thing again resumes it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/stop.sh --name NAME
  --name NAME  the job's name (launch.sh --name; default there: the workdir's or sweep's name)
$COMMON_USAGE
USAGE
}

NAME=""
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --name) [[ $# -ge 2 ]] || die "$1 needs a value"; NAME="$2" && shift 2 ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings
[[ -n "$NAME" ]] || die "give --name NAME (the log names are in ~/scaling-vlm-logs)"
pid="$(remote_home "$LOG_DIR")/$(quote "$NAME.pid")"
tpu_ssh "kill -TERM \"\$(cat $pid)\" && echo \"\$(hostname): SIGTERM sent\""
