"""The configuration file: where it is, its TOML, its top level and its `[[sources]]` tables.

Each `[[sources]]` table is one source of one `consume` run (docs/brokers.md, "One cron line
for all brokers"); its settings are, lowest first: the defaults, lsst_alert_consumer.py's,
the file's top level, the table, the environment, the command line. config.load(source=n)
builds the n-th; load_sources builds them all.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .config import (
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    Settings,
    _apply,
    from_environment,
    load,
)
from .errors import ConfigurationError

SOURCES = "sources"
# What one run has once, whichever source it reads: its output directory (and member folder),
# its time limit (shared out among the sources) and whom it tells.
RUN_WIDE = {"output_dir": "one consume run writes one output directory",
            "member": "one consume run writes one member's folder",
            "duration": "--duration bounds the whole run (each source gets a share)",
            "notify": "one consume run has one notifier"}
# Settings that say which source to read: from the environment or the command line they would
# be laid over every table, so with [[sources]] they are refused. (setting, flag, variable)
NAMES_A_SOURCE = (("preset", "--preset", "LSST_ALERTS_PRESET"),
                  ("topics", "--topic", "LSST_ALERTS_TOPIC"),
                  ("topic", "--topic", "LSST_ALERTS_TOPIC"),
                  ("from_paths", "--from", "LSST_ALERTS_FROM_PATHS"))
KAFKA_NAMES_A_SOURCE = (("bootstrap.servers", "--bootstrap-servers",
                         "LSST_ALERTS_KAFKA_BOOTSTRAP_SERVERS"),
                        ("group.id", "--group-id", "LSST_ALERTS_KAFKA_GROUP_ID"))


def config_path(config_file: Path | None, environ: dict[str, str]) -> Path | None:
    """--config, else LSST_ALERTS_CONFIG, else ./lsst_alerts.toml when it exists."""
    path = config_file or (Path(environ[ENV_PREFIX + "CONFIG"])
                           if environ.get(ENV_PREFIX + "CONFIG") else None)
    if path is None and Path(DEFAULT_CONFIG_FILE).exists():
        path = Path(DEFAULT_CONFIG_FILE)
    return path


def read_config(config_file: Path | None,
                environ: dict[str, str]) -> tuple[Path, dict[str, Any]] | None:
    """The configuration file's path and TOML document, or None when there is no file."""
    path = config_path(config_file, environ)
    if path is None:
        return None
    try:
        return path, tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read the configuration file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc


def source_tables(path: Path, document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's [[sources]] tables ([] without any)."""
    tables = document.get(SOURCES, [])
    if not (isinstance(tables, list) and all(isinstance(t, dict) for t in tables)):
        raise ConfigurationError(
            f"{path}: sources must be an array of tables, each begun by a [[sources]] line "
            "(docs/brokers.md, \"One cron line for all brokers\")")
    return tables


def apply_document(settings: Settings, path: Path, document: dict[str, Any],
                   source: int | None) -> None:
    """The file's top level, then its `source`-th [[sources]] table (1-based) when given;
    an error in the table names `sources[n].<key>`."""
    tables = source_tables(path, document)
    _apply(settings, {k: v for k, v in document.items() if k != SOURCES}, str(path))
    if source is None:
        return
    if not 1 <= source <= len(tables):
        raise ConfigurationError(f"{path} has {len(tables)} [[sources]] tables, no {source}")
    for key, value in tables[source - 1].items():
        where = f"{path}: sources[{source}].{key}"
        run_wide = RUN_WIDE.get("notify" if key.startswith("notify") else key)
        if run_wide:
            raise ConfigurationError(f"{where}: {run_wide}; set {key} at the file's top level")
        try:
            _apply(settings, {key: value}, where)
        except ConfigurationError as exc:
            if str(exc).startswith(where):
                raise
            raise ConfigurationError(f"{where}: {exc}") from exc


def _refuse_sources_elsewhere(path: Path, environ: dict[str, str],
                              flags: dict[str, Any]) -> None:
    """A source named on the command line or in the environment, with [[sources]] in the file,
    is an error naming both: which should win is not something to guess for a cron job."""
    given = {k: v for k, v in flags.items() if v not in (None, (), [])}
    from_env = from_environment(environ)
    named = []
    for setting, flag, variable in NAMES_A_SOURCE:
        named += [flag] if setting in given else []
        named += [variable] if setting in from_env else []
    for key, flag, variable in KAFKA_NAMES_A_SOURCE:
        named += [flag] if key in given.get("kafka", {}) else []
        named += [variable] if key in from_env.get("kafka", {}) else []
    if named:
        raise ConfigurationError(
            f"{', '.join(dict.fromkeys(named))} names a source, and {path} has [[sources]] "
            "tables: name each source in its table, or drop the [[sources]] tables (or use "
            "another --config) to read the one source given")


def load_sources(config_file: Path | None = None, environ: dict[str, str] | None = None,
                 flags: dict[str, Any] | None = None,
                 base: dict[str, Any] | None = None) -> list[Settings]:
    """Each [[sources]] table's validated Settings, in the file's order; [] without any."""
    environ = dict(os.environ) if environ is None else environ
    found = read_config(config_file, environ)
    if found is None or not (tables := source_tables(*found)):
        return []
    path = found[0]
    _refuse_sources_elsewhere(path, environ, flags or {})
    load(config_file, environ, flags, base, require_source=False)  # the top level's own errors
    sources = []
    for n, table in enumerate(tables, 1):
        where = f"{path}: sources[{n}]"
        try:
            sources.append(load(config_file, environ, flags, base, source=n))
        except ConfigurationError as exc:
            if str(exc).startswith(where):
                raise
            preset = f" (preset {table['preset']})" if "preset" in table else ""
            raise ConfigurationError(f"{where}{preset}: {exc}") from exc
    return sources
