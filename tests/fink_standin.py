"""Fink's LSST stream, as Fink's producer writes it and fink-client reads it.

Built from fink-client 12.x (`fink_client/consumer.py`): `AlertConsumer.process_message` takes
the Kafka key as the Avro writer schema (`fastavro.schema.parse_schema(json.loads(key))`) and
`_decode_avro_alert` reads the value with `fastavro.schemaless_reader(io.BytesIO(value),
schema)`. fink-client is not a test dependency (it pulls in matplotlib, slack_sdk, rich-click,
tqdm, psutil ...): `client_decode` below is those two calls, reproduced as written.

The records and their schema come from fink-client's own sample, `datatest/lsst/
part-2-918301.avro` (an Avro container of Fink's Data Transfer service, the same records and
Spark schema as the live topics); each message is key = that schema's JSON, exactly as the file
holds it, value = one record written schemaless with it. On a clean clone the simulated tree's
copy stands in (tests/simulated_tree.py): its schema is put in Spark's shape (`[T, "null"]`)
and given Fink's own fields with the real sample's types.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import fastavro

from .conftest import real_files

FINK_SAMPLE = "rubin/fink_client_v10_0/part-2-918301.avro"
# Fink's own fields with the types they have in the real sample (a subset), for the simulated
# container that lacks them.
FINK_FIELDS: list[dict[str, Any]] = [
    {"name": "brokerIngestMjd", "type": ["double", "null"]},
    {"name": "fink_broker_version", "type": ["string", "null"]},
    {"name": "lc_features", "type": [{"type": "map", "values": [{
        "type": "record", "name": "topLevelRecord.topLevelRecord", "fields": [
            {"name": "mean", "type": ["double", "null"]},
            {"name": "amplitude", "type": ["double", "null"]}]}, "null"]}, "null"]},
    {"name": "clf", "type": {"type": "record", "name": "topLevelRecord.clf", "fields": [
        {"name": "snnSnVsOthers_score", "type": ["double", "null"]},
        {"name": "cats_class", "type": ["int", "null"]},
        {"name": "cats_score", "type": ["double", "null"]}]}},
    {"name": "pred", "type": {"type": "record", "name": "topLevelRecord.pred", "fields": [
        {"name": "is_sso", "type": ["boolean", "null"]},
        {"name": "main_label_classifier", "type": ["int", "null"]}]}},
]


def client_decode(key: bytes, value: bytes) -> dict[str, Any]:
    """fink-client's decoding of one message (process_message, then _decode_avro_alert)."""
    parsed = fastavro.schema.parse_schema(json.loads(key.decode("utf8")))
    alert = io.BytesIO(value)
    alert.seek(0)
    record = fastavro.schemaless_reader(alert, parsed)
    assert isinstance(record, dict)
    return record


def _null_last(avro_type: Any) -> Any:
    """A type as Spark writes it: a nullable union is [T, "null"]."""
    if isinstance(avro_type, list):
        branches = [_null_last(branch) for branch in avro_type]
        return [b for b in branches if b != "null"] + (["null"] if "null" in branches else [])
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "record":
            return dict(avro_type, fields=[{"name": f["name"], "type": _null_last(f["type"])}
                                           for f in avro_type["fields"]])
        if avro_type.get("type") == "array":
            return dict(avro_type, items=_null_last(avro_type["items"]))
        if avro_type.get("type") == "map":
            return dict(avro_type, values=_null_last(avro_type["values"]))
    return avro_type


def _fink_values(record: dict[str, Any]) -> dict[str, Any]:
    """Fink's fields for a simulated record, drawn from its id (deterministic)."""
    dia_source_id = record["diaSource"]["diaSourceId"]
    return {"brokerIngestMjd": 61000.5, "fink_broker_version": "4.0",
            "lc_features": {"r": {"mean": float(dia_source_id % 1000), "amplitude": None}},
            "clf": {"snnSnVsOthers_score": (dia_source_id % 97) / 97, "cats_class": dia_source_id
                    % 20, "cats_score": None},
            "pred": {"is_sso": record["diaSource"].get("ssObjectId") not in (None, 0),
                     "main_label_classifier": dia_source_id % 7}}


@dataclass
class FinkStream:
    """The messages of a Fink topic and the records they hold."""

    schema_json: str
    records: list[dict[str, Any]]

    @property
    def keys(self) -> list[bytes]:
        return [self.schema_json.encode() for _ in self.records]

    def values(self) -> list[bytes]:
        parsed = fastavro.parse_schema(json.loads(self.schema_json), named_schemas={})
        out = []
        for record in self.records:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, parsed, record)
            out.append(buffer.getvalue())
        return out


def fink_stream() -> FinkStream:
    """Fink's sample alerts as the messages of a Fink LSST topic."""
    (path,) = real_files(FINK_SAMPLE)
    with open(path, "rb") as handle:
        reader = fastavro.reader(handle)
        schema_json = reader.metadata["avro.schema"]
        records = [dict(record) for record in reader]
    schema = json.loads(schema_json)
    names = {field["name"] for field in schema["fields"]}
    if "clf" not in names:  # the simulated copy: Spark's union order, Fink's own fields
        schema = _null_last(schema)
        schema["fields"] = [*schema["fields"], *FINK_FIELDS]
        records = [{**record, **_fink_values(record)} for record in records]
        schema_json = json.dumps(schema)
    return FinkStream(schema_json, records)
