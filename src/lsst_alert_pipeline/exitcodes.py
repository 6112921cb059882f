"""Exit statuses of `lsst-alerts consume` (and run_lsst_consumer.sh): one meaning each."""

OK = 0  # caught up (lag 0), or the --max-messages / --duration limit was reached
INTERNAL_ERROR = 1  # a bug: the traceback is in the log; nothing uncommitted was acknowledged
CONFIG_ERROR = 2  # bad configuration or command line: the message says what to fix
BROKER_UNREACHABLE = 3  # broker down past --broker-timeout, or credentials refused
INTERRUPTED = 4  # SIGINT/SIGTERM: the current batch was finished and committed first
OUTPUT_ERROR = 5  # output directory not writable (disk full, read-only): nothing committed
ALREADY_RUNNING = 6  # another consumer holds the lock on this output directory
STALLED = 7  # no message for --idle-timeout seconds while lag was still above 0
RETENTION_LOSS = 8  # caught up, but the broker had deleted unread alerts (see the log/summary)
RETENTION_FAILED = 9  # run_lsst_consumer.sh only: the run succeeded, its cleanup afterwards failed
ARCHIVE_DAMAGED = 10  # compact: a night has a missing or damaged archive file; it was not merged
ALL_DEADLETTERED = 11  # messages were read but none written: every one was a dead letter

MEANING = {
    OK: "success",
    INTERNAL_ERROR: "internal error",
    CONFIG_ERROR: "configuration error",
    BROKER_UNREACHABLE: "broker unreachable",
    INTERRUPTED: "interrupted",
    OUTPUT_ERROR: "output not writable",
    ALREADY_RUNNING: "already running",
    STALLED: "stalled before catching up",
    RETENTION_LOSS: "alerts lost to the broker's retention",
    RETENTION_FAILED: "the run succeeded, retention (cleanup) failed",
    ARCHIVE_DAMAGED: "an archive file is missing or damaged (lsst-alerts verify names it)",
    ALL_DEADLETTERED: "every message read was a dead letter, none written",
}


def listing(exclude: tuple[int, ...] = ()) -> str:
    """'0 success, 1 internal error, ...': the statuses and their meanings, for --help."""
    return ", ".join(f"{code} {meaning}" for code, meaning in MEANING.items()
                     if code not in exclude)
