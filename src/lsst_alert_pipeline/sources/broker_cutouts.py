"""Cutouts of the Lasair and Babamul alerts, whose messages carry none, from each broker's web
server; the same concurrency, retries and missing-for-now/gone rules as ANTARES's thumbnails
(antares_thumbnails.py), whose fetcher these extend.

- Lasair (lsst-uk/lasair-lsst `webserver/lasair/utils.py` fits): `GET <api_url>/fits/
  <diaSourceId>_cutout{Science,Template,Difference}/` serves the plain FITS file, and answers
  200 with an empty body when its cutout store has none (it keeps recent alerts only): that is
  a missing cutout, never an empty file.
- Babamul (babamul 0.2 `api.get_cutouts`, BOOM `surveys/cutouts.rs`): `GET <api_url>/surveys/
  LSST/cutouts?candid=<diaSourceId>` with `Authorization: Bearer <token>` answers
  `{message, data: {candid, cutoutScience, cutoutTemplate, cutoutDifference}}`, each base64 of
  a FITS file, gzipped or not; 404 when it has none.

The pipeline asks with the id the decoder recorded, `<broker>:<diaSourceId>`, and the ledger
keeps it with a missing cutout, so `fill_missing` gives each broker's rows to its own fetcher.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from .antares_thumbnails import (
    GONE,
    KINDS,
    LATER,
    Answered,
    AntaresThumbnails,
    FetchedCutouts,
    MissingState,
    Transient,
    plain_fits,
)

FIELDS = {kind: f"cutout{kind.capitalize()}" for kind in KINDS}


class BrokerCutouts(AntaresThumbnails):
    """A broker's cutout API: `ask` asks for one alert, the rest is ANTARES's machinery."""

    broker = ""

    @property
    def id_prefix(self) -> str:
        """The prefix of the alert ids this fetcher answers for (fill_cutouts.py)."""
        return f"{self.broker}:"

    def ask(self, result: FetchedCutouts, kinds: Sequence[str],
            deadline: float | None) -> FetchedCutouts:
        dia_source_id = result.alert_id.removeprefix(self.id_prefix)
        if not dia_source_id.isdigit():
            result.lose(kinds, GONE, f"{result.alert_id!r} names no diaSourceId")
            return result
        self.fill(result, dia_source_id, kinds, deadline)
        return result

    def fill(self, result: FetchedCutouts, dia_source_id: str, kinds: Sequence[str],
             deadline: float | None) -> None:
        raise NotImplementedError


class LasairCutouts(BrokerCutouts):
    """Lasair's `/fits/<diaSourceId>_cutout<Kind>/` pages, the three of an alert at once."""

    broker = "lasair"

    def fill(self, result: FetchedCutouts, dia_source_id: str, kinds: Sequence[str],
             deadline: float | None) -> None:
        futures = {kind: self.file_pool.submit(self._page, dia_source_id, kind, deadline)
                   for kind in kinds}
        for kind, future in futures.items():
            blob, why = future.result()
            if blob is not None:
                result.cutouts[kind] = blob
            else:
                result.lose([kind], *why)

    def _page(self, dia_source_id: str, kind: str, deadline: float | None
              ) -> tuple[bytes | None, tuple[MissingState, str]]:
        name = f"{dia_source_id}_{FIELDS[kind]}"
        try:
            body = self._get(f"fits/{name}/", deadline).content
        except Answered as exc:
            return None, (GONE, f"Lasair has no {kind} cutout for diaSourceId {dia_source_id} "
                                f"({exc})")
        except Transient as exc:
            return None, (LATER, f"fetching Lasair's {name} failed: {exc}")
        if not body:
            return None, (GONE, f"Lasair has no {kind} cutout for diaSourceId {dia_source_id} "
                                "(it answered 200 with an empty body: its cutout store keeps "
                                "recent alerts only)")
        try:
            return plain_fits(body, ""), (GONE, "")
        except ValueError as exc:
            return None, (GONE, f"Lasair's {name} is broken: {exc}")


class BabamulCutouts(BrokerCutouts):
    """Babamul's `surveys/LSST/cutouts?candid=`: one request gives the three of an alert."""

    broker = "babamul"

    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0,
                 retries: int = 3, concurrency: int = 24):
        super().__init__(base_url, timeout, retries, concurrency)
        self.token = token
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def fill(self, result: FetchedCutouts, dia_source_id: str, kinds: Sequence[str],
             deadline: float | None) -> None:
        if not self.token:
            result.lose(kinds, LATER, "no Babamul API token: set [babamul] api_token (or "
                                      "LSST_ALERTS_BABAMUL_API_TOKEN) to fetch cutouts")
            return
        try:
            response = self._get(f"surveys/LSST/cutouts?candid={dia_source_id}", deadline)
            data = json.loads(response.content)
            data = data.get("data", data)  # as babamul's get_cutouts reads it
            encoded = {kind: data.get(FIELDS[kind]) for kind in kinds}
        except Answered as exc:
            result.lose(kinds, GONE, f"Babamul has no cutouts for candid {dia_source_id} ({exc})")
            return
        except Transient as exc:
            result.lose(kinds, LATER, f"fetching Babamul's cutouts of {dia_source_id} failed: "
                                      f"{exc}")
            return
        except (ValueError, AttributeError) as exc:  # not the documented JSON: ask again later
            result.lose(kinds, LATER, f"Babamul's cutouts answer for {dia_source_id} does not "
                                      f"parse: {exc}")
            return
        for kind, text in encoded.items():
            if not text:
                result.lose([kind], GONE, f"Babamul sent no {kind} cutout for candid "
                                          f"{dia_source_id} (empty)")
                continue
            try:
                result.cutouts[kind] = plain_fits(base64.b64decode(text, validate=True), "")
            except (binascii.Error, ValueError, TypeError) as exc:
                result.lose([kind], GONE, f"Babamul's {kind} cutout of {dia_source_id} is "
                                          f"broken: {exc}")


def broker_cutouts(preset: str | None, api_url: str | None, token: str | None,
                   timeout: float, retries: int, concurrency: int) -> BrokerCutouts | None:
    """The cutout fetcher of a preset whose messages carry no cutouts (None for the others)."""
    if preset == "lasair" and api_url:
        return LasairCutouts(api_url, timeout, retries, concurrency)
    if preset == "babamul" and api_url:
        return BabamulCutouts(api_url, token, timeout, retries, concurrency)
    return None
