"""Every error the tool names, in one hierarchy (docs/architecture.md, Errors and exit codes).

Two families, as arroyo splits them: a message that cannot be processed (`InvalidMessage`: it
is dead-lettered with its bytes and a reason, and the run goes on) and a failure of the system
(every other `PipelineError`: the run stops, commits nothing more, and exits with the error's
`exit_code`, one meaning each, listed in exitcodes.py).
"""

from __future__ import annotations

from . import exitcodes


class PipelineError(Exception):
    """An error the tool names in one line for the user; `exit_code` is the status it ends with."""

    exit_code = exitcodes.INTERNAL_ERROR


class InvalidMessage(PipelineError):  # noqa: N818 - the arroyo name users of Kafka tools know
    """A message that cannot be processed; it carries its bytes and a reason naming the problem."""

    def __init__(self, reason: str, payload: bytes = b"", *, schema_id: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.payload = payload
        self.schema_id = schema_id

    def __str__(self) -> str:
        return self.reason


class UnknownSchemaError(InvalidMessage):
    """A wire-format message names a schema id that neither the registry nor the bundle knows."""


class ConfigurationError(PipelineError):
    """Bad configuration: the run stops at once with a message that says what to fix."""

    exit_code = exitcodes.CONFIG_ERROR


class BrokerUnreachable(PipelineError):  # noqa: N818
    """A remote the run depends on (the Kafka broker, the Schema Registry) cannot be reached or
    refuses our credentials: stop, commit nothing more, let the next run go on."""

    exit_code = exitcodes.BROKER_UNREACHABLE


class Interrupted(PipelineError):  # noqa: N818
    """SIGINT/SIGTERM arrived while the run was still waiting to start (a broker not answering
    yet): nothing was read, nothing committed."""

    exit_code = exitcodes.INTERRUPTED


class DependencyUnreachable(BrokerUnreachable):
    """A service the run needs besides the broker (the Schema Registry) cannot be reached, keeps
    failing (5xx) or refuses our credentials: an infrastructure failure, never a dead letter."""


class OutputError(PipelineError):
    """The output directory cannot be written (full disk, read-only, permissions)."""

    exit_code = exitcodes.OUTPUT_ERROR


class AlreadyRunning(PipelineError):  # noqa: N818
    """Another consumer holds the lock on this output directory."""

    exit_code = exitcodes.ALREADY_RUNNING


class QueryError(PipelineError):
    """The query cannot run: bad SQL, or no archive; the message is one line for the user."""

    exit_code = exitcodes.CONFIG_ERROR


class NotFound(PipelineError, LookupError):  # noqa: N818
    """What the command line named (an alert, a night) is not in the collection."""

    exit_code = exitcodes.CONFIG_ERROR


class MergeError(PipelineError):
    """The merge was refused and nothing was changed (the message says why)."""

    exit_code = exitcodes.CONFIG_ERROR


class ArchiveDamaged(PipelineError):  # noqa: N818
    """An archive file is missing or damaged: `compact` leaves its night unmerged rather than
    drop its rows (`lsst-alerts verify` names the file and its alerts; docs/archive.md)."""

    exit_code = exitcodes.ARCHIVE_DAMAGED
