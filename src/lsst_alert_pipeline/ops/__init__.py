"""Operations on an output directory after (or beside) a run: status, retention, merge.

May import pipeline (its layout, lock and ledger), sinks, filter, decode, sources, config, errors
and exitcodes; the CLI calls these functions and prints what they return.
A new maintenance command's logic goes here as one module, with a thin command in cli/.
"""
