"""Bytes to one normalized record per alert: wire/OCF/BSON detection, schemas, normalization.

Pure functions (no broker, no disk): formats.py detects and decodes, batch.py and columnar.py are
the fast batch path, schemas.py holds the per-version field-name table, normalize.py builds the
`AlertRecord`, times.py holds MJD and dayObs. May import sources, config, errors and exitcodes.
A new wire format goes in formats.py; a new schema version's names in schemas.py
(docs/formats.md).
"""
