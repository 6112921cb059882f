"""Where alerts go: the daily CSV files, the FITS cutouts, dead letters and Kafka topics.

Sinks write files (temp + rename, atomic.py) but never sync or commit: the pipeline decides when
a batch is durable. May import filter, decode, sources, config, errors and exitcodes.
A new output format goes here as one module, called from `Pipeline.write` in pipeline/run.py
(docs/architecture.md, "How to add a new sink or output format").
"""
