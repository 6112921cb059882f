"""Secrets never shown: the one place that decides what is a secret and how it is masked.

A secret key's value is masked whole (`shown`); credentials inside any URL are masked wherever
they appear in text (`mask_secrets`); a notification URL is masked as apprise knows its service
(`mask_url`). Logs, `config check`, dead letters and the ledger show values only through these.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import fields
from pathlib import Path
from typing import Any

# A key naming any of these holds a secret: its value is shown as MASK, wherever it came from.
SECRET_MARKERS = ("password", "secret", "token", "user.info", "sasl.oauthbearer.config",
                  "ssl.key.pem")
MASK = "***"
# scheme://USERINFO@, up to the authority's last '@' as urllib splits it (a raw '@' in a password)
_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#]*)@")


def is_secret(key: str) -> bool:
    return any(marker in key.lower() for marker in SECRET_MARKERS)


def mask_secrets(text: str) -> str:
    """Text as any output may show it, every URL's credentials masked (`https://user:***@host`);
    with shown() (a secret key's value masked whole), the one place secrets are masked."""
    def replace(match: re.Match[str]) -> str:
        user, colon, _ = match["userinfo"].partition(":")
        return f"{match['head']}{user}:{MASK}@" if colon else f"{match['head']}{MASK}@"

    return _URL_USERINFO.sub(replace, text)


def shown(key: str, value: Any) -> Any:
    """A setting's value as it may be shown: MASK for a secret key, URLs' credentials masked."""
    return MASK if is_secret(key) else mask_secrets(value) if isinstance(value, str) else value


def mask_url(url: str) -> str:
    """A notification URL as logs and `config check` show it: apprise knows, per service, which
    parts are secrets (a password, a Slack or Telegram token in the path) and masks them."""
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # a URL apprise cannot read shows nothing past its scheme
        plugin = None
    if not plugin:
        return url.partition("://")[0] + "://***"
    shown = urllib.parse.urlsplit(str(plugin.url(privacy=True)))
    # apprise spells out every default option; show only those the user wrote
    given = {key for key, _ in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)}
    query = [(k, v) for k, v in urllib.parse.parse_qsl(shown.query) if k in given]
    return urllib.parse.urlunsplit(shown._replace(query=urllib.parse.urlencode(query, safe="*")))


def masked(settings: Any) -> dict[str, Any]:
    """The effective settings as plain data, every secret masked (shown)."""
    out: dict[str, Any] = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        if isinstance(value, dict):  # kafka, broker_api: each key decides (a token is masked)
            value = {k: shown(k, v) for k, v in sorted(value.items())}
        elif item.name == "notify_urls":
            value = [mask_url(url) for url in value]
        elif isinstance(value, list):
            value = [shown(item.name, v) for v in value]
        else:
            value = shown(item.name, str(value) if isinstance(value, Path) else value)
        out[item.name] = value
    return out
