#!/bin/sh
# The syncd image's entrypoint: `syncd ARGS...` (default `run`), with the store's schema upgraded first when
# SYNCD_DB_UPGRADE=1 and the command is `run`. exec: syncd becomes PID 1's process and gets the signals itself
# (SIGTERM stops it cleanly, SIGHUP reloads the mapping files).
set -eu
if [ "$#" -eq 0 ]; then
    set -- run
fi
if [ "${SYNCD_DB_UPGRADE:-0}" = "1" ] && [ "$1" = "run" ]; then
    syncd db upgrade
fi
exec syncd "$@"
