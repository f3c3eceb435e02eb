#!/usr/bin/env bash
# Runs a shell command on the workers (default: all) in CODE_DIR, e.g.
#   tpu_scripts/ssh.sh -- 'ls ~/scaling-vlm-logs && df -h .'
# The words after -- are joined with spaces, as ssh does: quote what the worker must see quoted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
Usage: tpu_scripts/ssh.sh [--worker all|N] -- COMMAND...
$COMMON_USAGE
USAGE
}

COMMAND=()
split_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case "$1" in
    --) shift && COMMAND=("$@") && break ;;
    -h | --help) usage && exit 0 ;;
    *) parse_common "$@"; ((CONSUMED)) || unknown_flag "$1"; shift "$CONSUMED" ;;
  esac
done
finish_settings
((${#COMMAND[@]})) || die "give the command after --"
tpu_ssh "cd $(remote_home "$CODE_DIR") && ${COMMAND[*]}"
