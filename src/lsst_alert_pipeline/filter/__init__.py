"""The ANTARES filter file, the DevKit locus builder and harness (`filter-test`), and `relay`.

antares_extendedness_filter.py is uploaded to ANTARES as it is: it imports only antares_devkit,
numpy and the standard library, never this package. The rest may import decode, sources, config,
errors and exitcodes; relay.py, a small pipeline of its own, may also use sinks and simulate.
A new filter rule goes in antares_extendedness_filter.py (docs/architecture.md, "How to add a
new filter rule").
"""
