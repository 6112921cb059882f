"""Alert schemas: the versions bundled in lsst-alert-packet, a Schema Registry, and field names.

Schemas are data looked up by version (docs/formats.md, Schema versions and field names): the
Confluent schema id of a Rubin alert is major*100 + minor (701, 900, 1000, 1101 ...).
"""

from __future__ import annotations

import base64
import copy
import functools
import http.client
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import fastavro
from lsst.alert.packet.schema import Schema as PacketSchema
from lsst.alert.packet.schema import get_schema_root

from ..errors import ConfigurationError, DependencyUnreachable, UnknownSchemaError

_VERSION_DIR = re.compile(r"^\d+$")
# What confluent_kafka's SchemaRegistryClient retries (schema_registry/common is_retriable); the
# others are answers: 404 an unknown id (bad bytes), 401/403 refused credentials.
RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REFUSED_STATUS = frozenset({401, 403})
# A short bounded retry: a registry restarting for a second does not stop the run, one that is
# down stops it within seconds (connection refused) so the next run reads the batch again.
REGISTRY_ATTEMPTS = 3
REGISTRY_FIRST_WAIT = 0.5  # seconds, doubled after each failed attempt
REGISTRY_ACCEPT = ("application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, "
                   "application/json")


@dataclass(frozen=True)
class FieldNames:
    """Where the specification's CSV fields live in one generation of the DIASource schema."""

    dec: str
    mjd: str
    band: str
    ps_flux: str
    ps_flux_err: str


# v3/v4 used the APDB's older names; v5 renamed them (docs/formats.md, Schema versions and field
# names).
OLD_NAMES = FieldNames(
    dec="decl", mjd="midPointTai", band="filterName", ps_flux="psFlux", ps_flux_err="psFluxErr"
)
CURRENT_NAMES = FieldNames(
    dec="dec", mjd="midpointMjdTai", band="band", ps_flux="psfFlux", ps_flux_err="psfFluxErr"
)
FIELD_NAMES_BY_MAJOR: dict[int, FieldNames] = {3: OLD_NAMES, 4: OLD_NAMES}


def field_names_for(version: str | None, dia_source: dict[str, Any] | None = None) -> FieldNames:
    """The field names of a schema version; for an unknown version, the names the record has."""
    if version:
        major = int(version.split(".")[0])
        return FIELD_NAMES_BY_MAJOR.get(major, CURRENT_NAMES)
    if dia_source is not None and "decl" in dia_source:
        return OLD_NAMES
    return CURRENT_NAMES


def schema_id_for(version: str) -> int:
    """The Confluent schema id Rubin uses for a version such as '9.0' (900) or '11.1' (1101)."""
    major, minor = (int(part) for part in version.split("."))
    return major * 100 + minor


def version_for(schema_id: int) -> str:
    """The version named by a Rubin schema id: 1101 -> '11.1'."""
    return f"{schema_id // 100}.{schema_id % 100}"


@functools.cache
def bundled_versions() -> tuple[str, ...]:
    """Every alert schema version lsst-alert-packet ships, oldest first."""
    root = get_schema_root()
    found = []
    for major in os.listdir(root):
        if not _VERSION_DIR.match(major):
            continue
        for minor in os.listdir(os.path.join(root, major)):
            name = f"lsst.v{major}_{minor}.alert.avsc"
            if _VERSION_DIR.match(minor) and os.path.exists(os.path.join(root, major, minor, name)):
                found.append((int(major), int(minor)))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def latest_version() -> str:
    return bundled_versions()[-1]


@functools.cache
def bundled_schema(version: str) -> dict[str, Any]:
    """The alert schema definition of a bundled version, as lsst-alert-packet loads it."""
    if version not in bundled_versions():
        raise KeyError(version)
    major, minor = version.split(".")
    path = os.path.join(get_schema_root(), major, minor, f"lsst.v{major}_{minor}.alert.avsc")
    definition: dict[str, Any] = PacketSchema.from_file(path).definition
    return definition


def parse(definition: dict[str, Any] | str) -> Any:
    """Parse a schema in its own namespace, so two versions' same-named types never clobber."""
    if isinstance(definition, str):
        definition = json.loads(definition)
    return fastavro.parse_schema(definition, named_schemas={})


NAMED_KINDS = ("record", "enum", "fixed")


def full_name(name: str, namespace: str | None) -> str:
    """An Avro name resolved against its namespace: a dotted name is already full."""
    return name if "." in name or not namespace else f"{namespace}.{name}"


def named_types(schema: Any) -> dict[str, dict[str, Any]]:
    """Every named type (record, enum, fixed) a schema defines, by full name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any, namespace: str) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in NAMED_KINDS:
                space = node.get("namespace", namespace)
                found[full_name(node["name"], space)] = node
                for child in node.get("fields", []):
                    walk(child["type"], space)
            elif kind == "array":
                walk(node["items"], namespace)
            elif kind == "map":
                walk(node["values"], namespace)
            elif isinstance(kind, dict | list):
                walk(kind, namespace)

    walk(schema, schema.get("namespace", "") if isinstance(schema, dict) else "")
    return found


def inline_named_types(schema: Any) -> Any:
    """The schema with every reference to a named type replaced by a renamed copy of it.

    polars rejects a schema that refers to a type defined earlier (prvDiaSources items are
    `lsst.vX_Y.diaSource`), and the simulator encodes runs of an alert's fields as records of
    their own, which must not refer to a type defined in another run. Names do not change the
    binary encoding, so copies are safe."""
    defined: dict[str, Any] = {}
    copies = [0]

    def walk(node: Any, namespace: str) -> Any:
        if isinstance(node, str):
            target = defined.get(full_name(node, namespace)) or defined.get(node)
            if target is None:
                return node
            copies[0] += 1
            renamed = copy.deepcopy(target)
            renamed["name"] = f"{target['name'].split('.')[-1]}_copy{copies[0]}"
            renamed.pop("namespace", None)
            return walk(renamed, namespace)
        if isinstance(node, list):
            return [walk(branch, namespace) for branch in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind in NAMED_KINDS:
            space = node.get("namespace", namespace)
            defined[full_name(node["name"], space)] = node
            if kind != "record":
                return dict(node)
            out = dict(node)
            out["fields"] = [dict(field, type=walk(field["type"], space))
                             for field in node["fields"]]
            return out
        if kind == "array":
            return dict(node, items=walk(node["items"], namespace))
        if kind == "map":
            return dict(node, values=walk(node["values"], namespace))
        if isinstance(kind, dict | list) or (isinstance(kind, str) and (
                kind in defined or full_name(kind, namespace) in defined)):
            return dict(node, type=walk(kind, namespace))
        return node

    root = schema.get("namespace", "") if isinstance(schema, dict) else ""
    return walk(copy.deepcopy(schema), root)


@functools.cache
def parsed_bundled_schema(version: str) -> Any:
    return parse(bundled_schema(version))


def split_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without its userinfo, the Basic Authorization header or None): urllib sends no
    credentials from a URL, and a URL shown anywhere must not carry them."""
    parts = urllib.parse.urlsplit(url.strip())
    bare = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.password is None:  # as confluent_kafka: a user without a password sends nothing
        return bare.rstrip("/"), None
    pair = (f"{urllib.parse.unquote(parts.username or '')}:"
            f"{urllib.parse.unquote(parts.password)}")
    return bare.rstrip("/"), "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class SchemaSource:
    """Finds the writer schema of a wire-format message: a Schema Registry, else the bundle.

    A registry that cannot be reached, keeps failing or refuses our credentials raises
    DependencyUnreachable (the run stops, commits nothing of the batch); only its answer that an
    id is unknown (404) makes the message a dead letter (docs/formats.md)."""

    def __init__(self, registry_url: str | None = None, timeout: float = 10.0,
                 attempts: int = REGISTRY_ATTEMPTS, first_wait: float = REGISTRY_FIRST_WAIT):
        # registry_url may carry user:password (config.Settings.schema_registry_url puts the
        # credentials there, whichever key they came from); registry_url keeps the bare URL.
        self.registry_url: str | None = None
        self._authorization: str | None = None
        if registry_url:
            self.registry_url, self._authorization = split_credentials(registry_url)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.first_wait = first_wait
        self._cache: dict[int, tuple[str | None, Any]] = {}
        self._lock = threading.Lock()

    def lookup(self, schema_id: int) -> tuple[str | None, Any]:
        """(version or None, parsed schema) for a schema id; cached per id."""
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        with self._lock:
            if schema_id not in self._cache:
                self._cache[schema_id] = self._load(schema_id)
            return self._cache[schema_id]

    def _load(self, schema_id: int) -> tuple[str | None, Any]:
        if self.registry_url:
            return self._from_registry(schema_id)
        version = version_for(schema_id)
        if schema_id <= 0 or version not in bundled_versions():
            known = ", ".join(str(schema_id_for(v)) for v in bundled_versions())
            raise UnknownSchemaError(
                f"unknown schema id {schema_id}: lsst-alert-packet bundles ids {known}; "
                "set schema.registry.url if the stream uses a Schema Registry",
                schema_id=schema_id,
            )
        return version, parsed_bundled_schema(version)

    def _from_registry(self, schema_id: int) -> tuple[str | None, Any]:
        body = self._get(f"/schemas/ids/{schema_id}", schema_id)
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise ConfigurationError(
                f"the Schema Registry at {self.registry_url} answered GET /schemas/ids/"
                f"{schema_id} without a schema: is schema.registry.url a Schema Registry?")
        kind = body.get("schemaType", "AVRO")
        if kind != "AVRO":
            raise UnknownSchemaError(
                f"schema id {schema_id} is a {kind} schema in the Schema Registry at "
                f"{self.registry_url}, not Avro", schema_id=schema_id)
        try:
            definition = json.loads(body["schema"])
            parsed = parse(definition)
        except Exception as exc:  # JSON and fastavro's parse errors alike
            raise UnknownSchemaError(
                f"schema id {schema_id} in the Schema Registry at {self.registry_url} is not a "
                f"readable Avro schema: {type(exc).__name__}: {exc}", schema_id=schema_id,
            ) from exc
        named = (str(definition.get("name", "")) + str(definition.get("namespace", ""))
                 if isinstance(definition, dict) else "")
        match = re.search(r"v(\d+)_(\d+)", named)
        version = f"{int(match.group(1))}.{int(match.group(2))}" if match else None
        return version, parsed

    def _get(self, path: str, schema_id: int) -> Any:
        """The JSON the registry answers for path, after at most `attempts` tries."""
        request = urllib.request.Request(f"{self.registry_url}{path}",
                                         headers={"Accept": REGISTRY_ACCEPT})
        if self._authorization:
            request.add_unredirected_header("Authorization", self._authorization)
        wait, failure = self.first_wait, ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(wait)
                wait *= 2
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise UnknownSchemaError(
                        f"schema id {schema_id} is not in the Schema Registry "
                        f"at {self.registry_url}",
                        schema_id=schema_id,
                    ) from exc
                if exc.code in REFUSED_STATUS:
                    raise DependencyUnreachable(
                        f"the Schema Registry at {self.registry_url} refused our credentials "
                        f"(HTTP {exc.code}; check basic.auth.user.info or the user:password "
                        "in schema.registry.url); nothing of this batch was committed, the "
                        "next run reads it again") from exc
                if exc.code not in RETRIABLE_STATUS:
                    raise ConfigurationError(
                        f"the Schema Registry at {self.registry_url} answered GET {path} with "
                        f"HTTP {exc.code}; check schema.registry.url") from exc
                failure = f"HTTP {exc.code} {exc.reason}"
            except (OSError, http.client.HTTPException) as exc:
                # URLError, refused, reset, timeout (all OSError), or a broken HTTP answer.
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                failure = f"{type(reason).__name__}: {reason}" if not isinstance(
                    reason, str) else reason
            except ValueError as exc:  # a 200 whose body is not JSON
                raise ConfigurationError(
                    f"the Schema Registry at {self.registry_url} answered GET {path} with "
                    f"something other than JSON ({exc}): is schema.registry.url a Schema "
                    "Registry?") from exc
        raise DependencyUnreachable(
            f"the Schema Registry at {self.registry_url} cannot be reached: {failure} "
            f"({self.attempts} attempts); nothing of this batch was committed, the next run "
            "reads it again")


class ForcedSchema(SchemaSource):
    """Reads every wire-format message with one schema, whatever id it names (--schema)."""

    def __init__(self, version_or_path: str):
        super().__init__()
        if version_or_path in bundled_versions():
            self.version: str | None = version_or_path
            self.parsed = parsed_bundled_schema(version_or_path)
        elif os.path.exists(version_or_path):
            self.version = None
            self.parsed = fastavro.schema.load_schema(version_or_path)
        else:
            raise ConfigurationError(
                f"--schema {version_or_path!r} is neither a bundled version "
                f"({', '.join(bundled_versions())}) nor an .avsc file"
            )
        self.label = version_or_path

    def lookup(self, schema_id: int) -> tuple[str | None, Any]:
        return self.version, self.parsed
