#!/bin/sh
# Cron/systemd wrapper for the LSST alert consumer: one bounded run, then retention.
#
#   0 2 * * * /path/to/run_lsst_consumer.sh >> /var/log/lsst_consumer.log 2>&1
#
# Works from cron's minimal environment (env -i, PATH=/usr/bin:/bin). Settings, all optional:
#   LSST_ALERTS_HOME        where the project is (default: this script's folder)
#   LSST_ALERTS_VENV        its virtual environment (default: $LSST_ALERTS_HOME/.venv)
#   LSST_ALERTS_CONFIG      TOML configuration (default: $LSST_ALERTS_HOME/lsst_alerts.toml)
#   LSST_ALERTS_OUTPUT_DIR  output directory (default: $LSST_ALERTS_HOME/lsst_alerts)
#   RETENTION_DAYS          days of CSV/FITS to keep (default 30; or the first argument)
#   MAX_RUN_SECONDS         bound for a stream that never pauses (default 3300)
# Any LSST_ALERTS_* variable of `lsst-alerts consume` is passed through (e.g. the SASL secret).
# Exit status: the consumer's (see README, "Exit statuses"); 6 when a run is already going on.
set -u
PATH=/usr/local/bin:/usr/bin:/bin
export PATH

script=$0
while [ -L "$script" ]; do
    target=$(readlink "$script")
    case $target in /*) script=$target ;; *) script=$(dirname "$script")/$target ;; esac
done
HOME_DIR=${LSST_ALERTS_HOME:-$(cd "$(dirname "$script")" && pwd -P)}
VENV=${LSST_ALERTS_VENV:-$HOME_DIR/.venv}
OUTPUT_DIR=${LSST_ALERTS_OUTPUT_DIR:-$HOME_DIR/lsst_alerts}
RETENTION_DAYS=${1:-${RETENTION_DAYS:-30}}
MAX_RUN_SECONDS=${MAX_RUN_SECONDS:-3300}
export LSST_ALERTS_OUTPUT_DIR="$OUTPUT_DIR"
if [ -z "${LSST_ALERTS_CONFIG:-}" ] && [ -f "$HOME_DIR/lsst_alerts.toml" ]; then
    LSST_ALERTS_CONFIG=$HOME_DIR/lsst_alerts.toml
    export LSST_ALERTS_CONFIG
fi

say() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) === LSST Alert Consumer: $*"; }

cd "$HOME_DIR" || { say "cannot enter $HOME_DIR"; exit 2; }
LSST=$VENV/bin/lsst-alerts
if [ ! -x "$LSST" ]; then
    say "no lsst-alerts in $VENV; install with ./scripts/demo.sh or set LSST_ALERTS_VENV"
    exit 2
fi
case $RETENTION_DAYS in ''|*[!0-9]*) say "RETENTION_DAYS must be a whole number, got '$RETENTION_DAYS'"; exit 2 ;; esac

mkdir -p "$OUTPUT_DIR/state" || { say "cannot create $OUTPUT_DIR"; exit 5; }
exec 9>>"$OUTPUT_DIR/state/cron.lock"
if ! flock -n 9; then
    say "already running for $OUTPUT_DIR (lock $OUTPUT_DIR/state/cron.lock held); this run exits"
    exit 6
fi

say "start pid $$, output $OUTPUT_DIR, config ${LSST_ALERTS_CONFIG:-none}, retention $RETENTION_DAYS days"
"$LSST" consume --duration "$MAX_RUN_SECONDS"
status=$?
say "consume ended with exit status $status"
if [ "$status" -eq 0 ] || [ "$status" -eq 8 ]; then
    "$LSST" cleanup --days "$RETENTION_DAYS" --output-dir "$OUTPUT_DIR"
    cleanup_status=$?
    [ "$cleanup_status" -eq 0 ] || say "retention failed with exit status $cleanup_status"
else
    say "retention skipped: it runs only after a successful run"
fi
say "end, exit status $status"
exit "$status"
