"""LSST alert pipeline: an ANTARES extendedness filter and a durable consumer of its stream."""

__version__ = "0.1.0"
