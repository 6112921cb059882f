"""The consumer: wires source -> decode -> sinks and owns durability and commit order.

run.py (`Pipeline.deliver`: write -> sync -> ledger -> commit), consume.py (settings in, a run
summary out), ledger.py and outputdir.py (lock, layout, crash recovery), progress.py.
May import sinks, filter, decode, sources, config, errors and exitcodes; nothing imports it but
cli, demo and ops (docs/architecture.md, "Where each guarantee is enforced").
"""
