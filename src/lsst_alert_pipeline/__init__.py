"""LSST alert pipeline: an ANTARES extendedness filter and a durable consumer of its stream.

Importing it changes nothing in the process; the command line sets up what a consumer process
needs where it starts (cli/__init__.py).
"""

__version__ = "0.1.0"
