"""A configuration error found while `consume` reads its settings comes before the notification
URLs are known: those that can still be read on their own (--notify, LSST_ALERTS_NOTIFY, the
TOML file's [notify] urls, the later overriding the earlier as for every setting) are told; when
none can, nothing can be (docs/notifications.md, A failed run)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .. import exitcodes
from ..config import DEFAULT_CONFIG_FILE, ENV_PREFIX, Settings, mask_secrets
from ..errors import ConfigurationError
from ..pipeline.outcome import RunSummary
from .notifier import run_message
from .send import send


def readable_setting(name: str, table_key: str, config_file: Path | None,
                     environ: dict[str, str]) -> Any:
    """One setting from the environment, else the TOML file (top level, or `table_key` of
    [notify]); None when neither gives it or the file cannot be read."""
    if environ.get(ENV_PREFIX + name.upper()):
        return environ[ENV_PREFIX + name.upper()]
    path = config_file or (Path(environ[ENV_PREFIX + "CONFIG"])
                           if environ.get(ENV_PREFIX + "CONFIG") else Path(DEFAULT_CONFIG_FILE))
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    table = document.get("notify")
    if table_key and isinstance(table, dict):
        return table.get(table_key)
    return document.get(name)


def urls_despite_error(config_file: Path | None, flag_urls: tuple[str, ...] | list[str],
                       environ: dict[str, str] | None = None) -> list[str]:
    """The notification URLs that can be read although the settings as a whole cannot."""
    environ = dict(os.environ) if environ is None else environ
    value: Any = list(flag_urls) or readable_setting("notify", "urls", config_file, environ)
    urls = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(url).strip() for url in urls if str(url).strip()]


def tell_unread_settings(error: ConfigurationError, config_file: Path | None,
                         flag_urls: tuple[str, ...] | list[str],
                         flag_output_dir: Path | str | None = None) -> bool:
    """Send the failed start to the URLs still readable; True when one took it."""
    urls = urls_despite_error(config_file, flag_urls)
    if not urls:
        return False
    environ = dict(os.environ)
    output_dir = (flag_output_dir or readable_setting("output_dir", "", config_file, environ)
                  or Settings().output_dir)
    summary = RunSummary(outcome=f"configuration error: {mask_secrets(str(error))}; nothing "
                         "was run", exit_code=exitcodes.CONFIG_ERROR)
    title, body = run_message(summary, Path(str(output_dir)))
    return any(delivery.delivered
               for delivery in send(urls, title, body, timeout=Settings().notify_timeout))
