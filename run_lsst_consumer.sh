#!/bin/sh
# Cron/systemd wrapper for the LSST alert consumer: one bounded run, then retention.
#
#   0 2 * * * /path/to/run_lsst_consumer.sh >> /var/log/lsst_consumer.log 2>&1
#
# Works from cron's minimal environment (env -i, PATH=/usr/bin:/bin). Settings, all optional:
#   LSST_ALERTS_HOME        where the project is (default: this script's folder)
#   LSST_ALERTS_VENV        its virtual environment (default: $LSST_ALERTS_HOME/.venv)
#   LSST_ALERTS_CONFIG      TOML configuration (default: $LSST_ALERTS_HOME/lsst_alerts.toml)
#   RETENTION_DAYS          days of CSV/FITS to keep (default 30; or the first argument)
#   MAX_RUN_SECONDS         bound for a stream that never pauses (default 3300)
# Any LSST_ALERTS_* variable of `lsst-alerts consume` is passed through (e.g. the SASL secret).
# The output directory is the one the configuration names (`lsst-alerts config get output_dir`:
# LSST_ALERTS_OUTPUT_DIR if set, else output_dir in the TOML, else ./lsst_alerts here); the
# lock, the consumer and retention all use it.
# Exit status: the consumer's (see README, "Exit statuses"); 2 when the configuration or
# RETENTION_DAYS is invalid (the tool's message says why); 6 when a run is already going on;
# 4 on SIGTERM/SIGINT (forwarded to the consumer, which commits its batch; no retention);
# 9 when the run succeeded (0) but retention failed. Retention runs only after 0 or 8 (never
# after 11, a run whose every message was a dead letter).
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
RETENTION_DAYS=${1:-${RETENTION_DAYS:-30}}
MAX_RUN_SECONDS=${MAX_RUN_SECONDS:-3300}
if [ -z "${LSST_ALERTS_CONFIG:-}" ] && [ -f "$HOME_DIR/lsst_alerts.toml" ]; then
    LSST_ALERTS_CONFIG=$HOME_DIR/lsst_alerts.toml
    export LSST_ALERTS_CONFIG
fi

say() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) === LSST Alert Consumer: $*"; }

# A signal is remembered here and forwarded to the consumer once it runs; the shell runs a trap
# only between commands or when it interrupts `wait`, hence the consumer in the background.
interrupted=
consumer_pid=
on_signal() {
    interrupted=$1
    if [ -n "$consumer_pid" ]; then
        # TERM for INT too: a background job of a non-interactive shell starts with SIGINT
        # ignored, so INT could be lost before the consumer installs its own handler.
        kill -TERM "$consumer_pid" 2>/dev/null
    fi
}
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT
end_if_interrupted() {
    [ -n "$interrupted" ] || return 0
    say "$interrupted received $1"
    say "end, exit status 4"
    exit 4
}

cd "$HOME_DIR" || { say "cannot enter $HOME_DIR"; exit 2; }
LSST=$VENV/bin/lsst-alerts
if [ ! -x "$LSST" ]; then
    say "no lsst-alerts in $VENV; install with ./scripts/demo.sh or set LSST_ALERTS_VENV"
    exit 2
fi
# The tool resolves the output directory (flags > environment > config file > defaults) and
# validates RETENTION_DAYS, so the wrapper keeps no second copy of either rule.
OUTPUT_DIR=$("$LSST" config get output_dir)
status=$?
if [ "$status" -ne 0 ] || [ -z "$OUTPUT_DIR" ]; then
    say "configuration error (see above): no output directory; nothing was run"
    exit 2
fi
if ! "$LSST" cleanup --days "$RETENTION_DAYS" --check; then
    say "RETENTION_DAYS='$RETENTION_DAYS' is invalid (see above); nothing was run"
    exit 2
fi
end_if_interrupted "before the run; nothing was run"

mkdir -p "$OUTPUT_DIR/state" || { say "cannot create $OUTPUT_DIR"; exit 5; }
exec 9>>"$OUTPUT_DIR/state/cron.lock"
if ! flock -n 9; then
    say "already running for $OUTPUT_DIR (lock $OUTPUT_DIR/state/cron.lock held); this run exits"
    exit 6
fi

say "start pid $$, output $OUTPUT_DIR, config ${LSST_ALERTS_CONFIG:-none}, retention $RETENTION_DAYS days"
"$LSST" consume --duration "$MAX_RUN_SECONDS" --output-dir "$OUTPUT_DIR" &
consumer_pid=$!
[ -z "$interrupted" ] || on_signal "$interrupted"  # a signal between fork and consumer_pid=
wait "$consumer_pid"
status=$?
# A trapped signal makes `wait` return at once: wait again for the consumer's own status.
while [ -n "$interrupted" ] && kill -0 "$consumer_pid" 2>/dev/null; do
    wait "$consumer_pid"
    status=$?
done
say "consume ended with exit status $status"
end_if_interrupted "during the run; retention skipped"
if [ "$status" -eq 0 ] || [ "$status" -eq 8 ]; then
    "$LSST" cleanup --days "$RETENTION_DAYS" --output-dir "$OUTPUT_DIR"
    cleanup_status=$?
    if [ "$cleanup_status" -ne 0 ]; then
        say "retention failed with exit status $cleanup_status (see above)"
        [ "$status" -ne 0 ] || status=9
    fi
else
    say "retention skipped: it runs only after a successful run"
fi
end_if_interrupted "during retention, which finished"
say "end, exit status $status"
exit "$status"
