#!/usr/bin/env bash
# Stop the cluster scripts/slurm-up.sh started in STATE: by the pids it recorded, nothing else.
set -uo pipefail
STATE="${1:-/tmp/tfforge-slurm}"
stop() {
    local pidfile="$1" pid
    [ -s "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}
stop "$STATE/slurmd.pid"
stop "$STATE/slurmctld.pid"
if [ -s "$STATE/munge-dir" ]; then
    MUNGE="$(cat "$STATE/munge-dir")"
    case "$MUNGE" in
        /run/tfforge-munge-*) stop "$MUNGE/sock/munged.pid"; rm -rf "$MUNGE" ;;
    esac
fi
echo "[slurm-down] stopped the cluster in $STATE" >&2
