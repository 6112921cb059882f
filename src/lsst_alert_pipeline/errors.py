"""Errors that split a bad message (dead-letter it, go on) from a failure of the system (stop)."""

from __future__ import annotations


class InvalidMessage(Exception):  # noqa: N818 - the arroyo name users of Kafka tools know
    """A message that cannot be processed; it carries its bytes and a reason naming the problem."""

    def __init__(self, reason: str, payload: bytes = b"", *, schema_id: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.payload = payload
        self.schema_id = schema_id

    def __str__(self) -> str:
        return self.reason


class ConfigurationError(Exception):
    """Bad configuration: the run stops at once with a message that says what to fix."""


class UnknownSchemaError(InvalidMessage):
    """A wire-format message names a schema id that neither the registry nor the bundle knows."""
