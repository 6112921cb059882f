"""`lsst-alerts status`: what the output directory holds and how the last run went.

Read-only: it takes no lock and reads the ledger while a consumer may be writing."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from ..decode.times import day_obs, mjd_of_utc
from ..sinks.archive_read import archive_health
from ..sinks.csv import night_parts
from ..sinks.ledger_read import connect_read_only

MISSING_LISTED = 20  # missing cutouts `status` prints; --json lists every one

def current_day_obs(now: dt.datetime | None = None) -> str:
    """Tonight's dayObs: the night that is going on, or that ended this morning, in Chile."""
    now = now or dt.datetime.now(dt.UTC)
    mjd = mjd_of_utc(now)
    name = day_obs(mjd)
    assert name is not None
    return name


def count_rows(csv: Path, start: int = 0) -> int:
    """Data rows of a CSV after byte `start` (a row boundary; 0 skips the header line); quoted
    newlines never occur in ours."""
    with open(csv, "rb") as handle:
        handle.seek(start)
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(lines - (1 if start == 0 else 0), 0)


def members(output_dir: Path) -> list[Path]:
    """The scale-out members' folders (members/NAME/), each a layout of its own."""
    return sorted(p for p in (output_dir / "members").glob("*") if p.is_dir())


def night_rows(output_dir: Path, name: str, merged: dict[str, int]) -> int:
    """A night's alerts: the root's rows plus each member's rows not merged into them yet."""
    rows = sum(count_rows(csv) for csv in night_parts(output_dir / "data", name))
    for member in members(output_dir):
        for path in night_parts(member / "data", name):  # every part: extra_columns changed
            start = merged.get(path.relative_to(output_dir).as_posix(), 0)
            rows += count_rows(path, start) if start < path.stat().st_size else 0
    return rows


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.glob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def _ledger_facts(ledger: Path) -> dict[str, Any]:
    facts: dict[str, Any] = {"last_run": None, "deadlettered": 0, "lost_to_retention": 0,
                             "retention_losses": [],
                             "alerts_in_ledger": 0, "missing_cutouts": [], "merged_through": {},
                             "retired_nights": {}}
    if not ledger.exists():
        return facts
    db = connect_read_only(ledger)  # writes nothing: a read-only disk can be inspected
    try:
        row = db.execute("SELECT started_at, ended_at, outcome, exit_code, summary FROM runs "
                         "ORDER BY id DESC LIMIT 1").fetchone()
        if row:
            facts["last_run"] = {
                "started": dt.datetime.fromtimestamp(row[0], dt.UTC).isoformat(),
                "ended": (dt.datetime.fromtimestamp(row[1], dt.UTC).isoformat()
                          if row[1] else None),
                "outcome": row[2] or "still running (or killed)", "exit_code": row[3],
                # what a broker's alerts lacked when written (decode/brokers.py INCOMPLETE)
                "incomplete": json.loads(row[4] or "{}").get("incomplete") or {}}
        facts["deadlettered"] = db.execute("SELECT COUNT(*) FROM deadletters").fetchone()[0]
        facts["deadletter_reasons"] = dict(db.execute(
            "SELECT reason, COUNT(*) FROM deadletters GROUP BY reason "
            "ORDER BY COUNT(*) DESC LIMIT 5"))  # the most frequent reasons
        facts["lost_to_retention"] = db.execute(
            "SELECT COALESCE(SUM(lost), 0) FROM retention_losses").fetchone()[0]
        facts["alerts_in_ledger"] = db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
        facts["retention_losses"] = [
            {"topic": t, "partition": p, "from": first, "to": end - 1, "lost": lost,
             "noticed": dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")}
            for t, p, first, end, lost, when in db.execute(
                "SELECT topic, partition, from_offset, to_offset, lost, noticed_at "
                "FROM retention_losses ORDER BY noticed_at")]
        facts["missing_cutouts"] = _missing_cutouts(db)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "merged_through" in tables:
            facts["merged_through"] = dict(db.execute("SELECT name, length FROM merged_through"))
        if "retired_nights" in tables:  # nights retention retired whole, with their alerts
            facts["retired_nights"] = dict(db.execute(
                "SELECT day_obs, SUM(alerts) FROM retired_nights GROUP BY day_obs "
                "ORDER BY day_obs"))
    finally:
        db.close()
    return facts


def _missing_cutouts(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Cutouts the ANTARES REST API did not give, missing for now first ([] on an older ledger)."""
    try:
        rows = db.execute(
            "SELECT dia_source_id, kind, state, reason, path, attempts FROM missing_cutouts "
            "ORDER BY state = 'gone', noticed_at, dia_source_id, kind").fetchall()
    except sqlite3.OperationalError:  # a ledger written before the table existed
        return []
    names = ("dia_source_id", "kind", "state", "reason", "path", "attempts")
    return [dict(zip(names, row, strict=True)) for row in rows]


def night_start(name: str) -> float:
    """When dayObs `name` begins (noon UTC: dayObs is the date in UTC-12h), Unix seconds."""
    day = dt.datetime.strptime(name, "%Y%m%d").replace(tzinfo=dt.UTC)
    return (day + dt.timedelta(hours=12)).timestamp()


def deliveries_since(ledger: Path, since: float) -> dict[str, Any]:
    """Per broker, the alerts its messages delivered since `since` (distinct diaSourceIds) and
    their verdicts, and how many alerts more than one broker delivered (the overlap)."""
    found: dict[str, Any] = {"brokers": {}, "overlap": 0}
    if not ledger.exists():
        return found
    db = connect_read_only(ledger)
    try:
        rows = db.execute(
            "SELECT broker, verdict, COUNT(DISTINCT dia_source_id) FROM deliveries "
            "WHERE received >= ? AND dia_source_id IS NOT NULL GROUP BY broker, verdict",
            (since,)).fetchall()
        totals = dict(db.execute(
            "SELECT broker, COUNT(DISTINCT dia_source_id) FROM deliveries "
            "WHERE received >= ? AND dia_source_id IS NOT NULL GROUP BY broker", (since,)))
        found["overlap"] = db.execute(
            "SELECT COUNT(*) FROM (SELECT dia_source_id FROM deliveries WHERE received >= ? "
            "AND dia_source_id IS NOT NULL GROUP BY dia_source_id "
            "HAVING COUNT(DISTINCT broker) > 1)", (since,)).fetchone()[0]
    except sqlite3.OperationalError:  # a ledger older than the table, read-only
        return found
    finally:
        db.close()
    for broker, verdict, count in rows:
        entry = found["brokers"].setdefault(broker, {"alerts": totals[broker], "verdicts": {}})
        entry["verdicts"][verdict] = count
    return found


def delivery_lines(delivered: dict[str, Any]) -> list[str]:
    """What `status` says of tonight's deliveries, when more than one broker is read."""
    brokers = delivered["brokers"]
    if not brokers:
        return []
    lines = ["delivered tonight: " + ", ".join(
        f"{broker} {entry['alerts']:,} alerts" for broker, entry in sorted(brokers.items()))
        + f"; {delivered['overlap']:,} delivered by more than one broker"]
    lines += [f"  {broker}: " + ", ".join(f"{count:,} {verdict}" for verdict, count
                                          in sorted(entry["verdicts"].items()))
              for broker, entry in sorted(brokers.items())]
    return lines


def collect(output_dir: Path, now: dt.datetime | None = None,
            kafka: dict[str, Any] | None = None,
            topics: list[str] | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data (what `status --json` prints)."""
    output_dir = output_dir.resolve()
    today = current_day_obs(now)
    today_date = dt.datetime.strptime(today, "%Y%m%d").date()
    week = [(today_date - dt.timedelta(days=back)).strftime("%Y%m%d") for back in range(7)]
    ledger_facts = _ledger_facts(output_dir / "state" / "ledger.sqlite")
    merged = ledger_facts.pop("merged_through")
    per_day = {name: night_rows(output_dir, name, merged) for name in week}
    cutout_files, cutout_bytes = folder_bytes(output_dir / "cutouts")
    for member in members(output_dir):
        files, size = folder_bytes(member / "cutouts")
        cutout_files, cutout_bytes = cutout_files + files, cutout_bytes + size
    status: dict[str, Any] = {
        "output_dir": str(output_dir),
        "day_obs": today,
        "alerts_today": per_day[today],
        "alerts_per_day": per_day,
        "cutout_files": cutout_files,
        "cutout_bytes": cutout_bytes,
        "members": [member.name for member in members(output_dir)],
        "archive": archive_health(output_dir),
        # each broker's alerts tonight and the overlap (the ledger's deliveries table)
        "deliveries_tonight": deliveries_since(output_dir / "state" / "ledger.sqlite",
                                               night_start(today)),
        **ledger_facts,
        "partitions": None,
    }
    if kafka and kafka.get("bootstrap.servers"):
        from ..sources.offsets import describe_group

        try:
            status["partitions"] = describe_group({**kafka, "socket.timeout.ms": 5000},
                                                  topics)
        except Exception as exc:  # status must answer even when the broker does not
            status["partitions"] = f"lag unavailable: {exc}"
    return status


def missing_cutout_lines(missing: list[dict[str, Any]]) -> list[str]:
    """What `status` says of the missing cutouts: counts, then the first MISSING_LISTED."""
    if not missing:
        return []
    later = sum(1 for row in missing if row["state"] == "later")
    lines = [f"missing cutouts: {len(missing):,} ({later:,} missing for now: `lsst-alerts "
             "fill-cutouts` or the next consume run fetches them; the rest the API does not have)"]
    lines += [f"  {row['dia_source_id']} {row['kind']}: {row['state']} - {row['reason']}"
              for row in missing[:MISSING_LISTED]]
    if len(missing) > MISSING_LISTED:
        lines.append(f"  ... and {len(missing) - MISSING_LISTED:,} more (status --json lists all)")
    return lines


def status_lines(facts: dict[str, Any]) -> list[str]:
    """The facts `collect` gathered, as the lines `status` prints."""
    lines = [
        f"output: {facts['output_dir']}",
        f"tonight (dayObs {facts['day_obs']}): {facts['alerts_today']:,} alerts",
        *(f"  {day}: {count:,}" for day, count in facts["alerts_per_day"].items()),
        f"cutouts: {facts['cutout_files']:,} files, {facts['cutout_bytes'] / 1e6:,.1f} MB",
    ]
    archive = facts["archive"]
    lines += delivery_lines(facts.get("deliveries_tonight") or {"brokers": {}})
    lines.append(f"archive: {archive['files']:,} files, {archive['alerts']:,} alerts")
    lines += [f"  {file['file']} is {file['problem']} (it held {file['alerts']:,} alerts): "
              "`lsst-alerts verify` names them, `verify --repair` writes them again"
              for file in archive["damaged"]]
    run = facts["last_run"]
    lines.append("last run: " + ("none" if run is None else
                                 f"{run['started']} -> {run['outcome']} (exit {run['exit_code']})"))
    if retired := facts["retired_nights"]:
        nights = sorted(retired)
        lines.append(f"retired by retention: {len(nights):,} nights ({nights[0]} to {nights[-1]}),"
                     f" {sum(retired.values()):,} alerts (known, never rewritten)")
    if run is not None:
        lines += [f"  {count:,} alerts written without: {why}"
                  for why, count in run.get("incomplete", {}).items()]
    lines.append(f"dead letters: {facts['deadlettered']:,}; lost to retention: "
                 f"{facts['lost_to_retention']:,}")
    lines += [f"  {count:,} x {reason}"
              for reason, count in facts.get("deadletter_reasons", {}).items()]
    losses = facts["retention_losses"]
    lines += [f"  {loss['topic']}/{loss['partition']}: offsets {loss['from']} to {loss['to']} "
              f"({loss['lost']:,} alerts) deleted by the broker before they were read, noticed "
              f"{loss['noticed']}" for loss in losses[-MISSING_LISTED:]]
    lines += missing_cutout_lines(facts["missing_cutouts"])
    if isinstance(facts["partitions"], list):
        lines += [f"  {row['topic']}/{row['partition']}: committed {row['committed']}, "
                  f"low {row['low']}, high {row['high']}, lag {row['lag']}"
                  + (f"; {row['lost_to_retention']:,} offsets below the low watermark were "
                     "never read (the next run counts them lost)"
                     if row["lost_to_retention"] else "") for row in facts["partitions"]]
    elif facts["partitions"]:
        lines.append(str(facts["partitions"]))
    return lines
