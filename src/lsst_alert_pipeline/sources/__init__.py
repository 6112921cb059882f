"""Where messages come from: Kafka, files and folders, offsets and replay, ANTARES thumbnails.

Owns the `Message` and the `Source` protocol (base.py) that the pipeline polls and commits.
May import only config, errors and exitcodes (nothing above it in the flow).
A new broker source goes here: one module implementing `Source` (docs/architecture.md,
"How to add a new source"), then one line in `pipeline/consume.py` `open_source`.
"""
