"""The alert simulator: realistic Rubin alerts, valid for any bundled schema from v7.0 up.

population.py and solar_system.py draw the sky (what causes each alert and its measurements),
fields.py says how each alert field is filled from them, packets.py walks the official schema
to build the alert records, cutouts.py renders their FITS cutouts, encode.py writes them as wire
bytes, files or an Avro container, publish.py sends them to a Kafka topic, and output.py is what
`lsst-alerts simulate` runs. The same seed gives byte-identical alerts. Imports: decode/ (schemas,
times, the AB zero point), and sinks/ and sources/ (Kafka) for publishing. Used by cli/,
demo.py, tests and benchmarks; the library below cli never imports it.
"""

from .cutouts import make_cutout
from .encode import (
    encode_body,
    encode_wire,
    iter_wire_files,
    plain_alert,
    write_container,
    write_wire_files,
)
from .packets import dia_source_id_of, simulate_alerts, simulated_versions

__all__ = [
    "dia_source_id_of",
    "encode_body",
    "encode_wire",
    "iter_wire_files",
    "make_cutout",
    "plain_alert",
    "simulate_alerts",
    "simulated_versions",
    "write_container",
    "write_wire_files",
]
