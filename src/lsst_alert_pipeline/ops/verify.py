"""`lsst-alerts verify`: every alert the ledger vouches for, checked against the files.

For each ledger entry: its CSV file exists, holds the alert's row exactly once within the length
the ledger vouches for, the row parses (as many cells as the header), and the cutouts it names
exist and open as FITS. Counted per night (the root and every member). Given the Kafka settings,
each partition's committed offset is compared with the offsets the ledger covers
(ops/verify_broker.py). `repair` forgets the ledger entries of alerts whose rows are not whole on
disk; with the broker it then re-reads what the broker still holds and writes them again, and the
broken cutouts under whole rows (ops/verify_refill.py); without it a replay
(`consume --reset-offsets earliest`) writes the rows again. The broker decides what is gone for
good.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astropy.io import fits

from ..errors import ConfigurationError
from ..pipeline.ledger import ArchiveFile, unpack_ids
from ..pipeline.outputdir import OutputDir, opened
from .status import current_day_obs
from .verify_archive import ArchiveCheck, check_archive

if TYPE_CHECKING:
    from ..config import Settings
    from .verify_broker import PartitionCheck
    from .verify_refill import Refill

DAMAGED_FOLDER = Path("state") / "damaged"  # where --repair moves damaged archive files

PATH_COLUMNS = ("science_cutout_path", "template_cutout_path", "difference_cutout_path")
NIGHT = re.compile(r"lsst_alerts_(\d{8})")


@dataclass
class NightCheck:
    night: str
    in_ledger: int = 0
    whole: int = 0
    retired: int = 0  # retention retired the night: never broken, never whole
    problems: list[str] = field(default_factory=list)
    gone_by_age: bool = False  # every CSV file and cutout gone, as `find -mtime` leaves it


@dataclass
class VerifyReport:
    nights: dict[str, NightCheck] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)  # diaSourceIds whose row is not whole
    # diaSourceId -> [(kind, path from the ledger's root)] of broken cutouts under a whole row
    broken_cutouts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    missing_files: list[str] = field(default_factory=list)  # ledger keys of vanished CSVs
    short_files: list[str] = field(default_factory=list)  # ledger keys of CSVs cut short
    forgotten: int = 0
    partitions: list[PartitionCheck] | None = None  # None: not checked, `partition_note` says why
    partition_note: str = ""
    missing_topics: list[str] = field(default_factory=list)  # the ledger's, not on the broker
    archive: ArchiveCheck | None = None
    refill: Refill | None = None
    repair_note: str = ""  # why --repair wrote nothing again (no broker, no files)

    @property
    def files_ok(self) -> bool:
        return not any(check.problems for check in self.nights.values())

    @property
    def not_on_disk(self) -> int:
        """Offsets the group committed that the ledger does not cover, unexplained."""
        return sum(b - a for check in self.partitions or [] for a, b in check.not_on_disk)

    @property
    def ok(self) -> bool:
        if self.refill is not None:  # repaired: what is still wrong is what did not come back
            return not (self.refill.gone or self.refill.deleted or self.refill.archive_gone
                        or self.unrepairable)
        return self.files_ok and not self.not_on_disk and (self.archive is None
                                                            or self.archive.ok)

    @property
    def unrepairable(self) -> list[str]:
        """Damaged archive files whose alerts the ledger does not name (listed before it
        recorded them): a repair cannot tell which alerts to write again."""
        return [file.name for file in (self.archive.damaged if self.archive else [])
                if file.dia_source_ids is None]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "forgotten": self.forgotten, "nights": [
            {"night": c.night, "in_ledger": c.in_ledger, "whole": c.whole,
             "retired": c.retired, "problems": c.problems, "gone_by_age": c.gone_by_age}
            for c in self.nights.values()],
            "partitions": (None if self.partitions is None
                           else [check.as_dict() for check in self.partitions]),
            "partition_note": self.partition_note, "missing_topics": self.missing_topics,
            "archive": None if self.archive is None else self.archive.as_dict(),
            "repair": None if self.refill is None else self.refill.as_dict(),
            "repair_note": self.repair_note}


def output_of(csv_key: str) -> str:
    """The output a CSV file's ledger key belongs to: '' or 'members/NAME'."""
    return csv_key.rsplit("/data/", 1)[0] if "/data/" in csv_key else ""


def fits_problem(path: Path) -> str | None:
    """Why a cutout file is not a valid FITS file (None when it is)."""
    if not path.is_file():
        return "missing"
    try:
        with fits.open(path, memmap=False) as hdus:
            hdus.verify("exception")
            if hdus[0].data is None and len(hdus) < 2:
                return "no image"
    except Exception as exc:  # astropy raises many kinds for broken files
        return f"not valid FITS ({type(exc).__name__})"
    return None


def read_durable_rows(path: Path, length: int) -> tuple[list[str], list[list[str]]]:
    with open(path, "rb") as handle:
        text = handle.read(length).decode(errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    return (rows[0], rows[1:]) if rows else ([], [])


def check_file(root: Path, key: str, length: int, expected: set[str],
               report: VerifyReport, check: NightCheck) -> None:
    """Check one CSV file against the alerts the ledger places in it."""
    path = root / key
    if not path.is_file():
        check.problems.append(f"{key}: missing ({len(expected):,} alerts in the ledger)")
        report.broken.extend(expected)
        report.missing_files.append(key)
        return
    if path.stat().st_size < length:
        report.short_files.append(key)
        check.problems.append(f"{key}: {path.stat().st_size:,} bytes, the ledger vouches for "
                              f"{length:,}")
    header, rows = read_durable_rows(path, length)
    if "diaSourceId" not in header:
        check.problems.append(f"{key}: no header with diaSourceId")
        report.broken.extend(expected)
        return
    id_column = header.index("diaSourceId")
    counts: Counter[str] = Counter()
    by_id: dict[str, list[str]] = {}
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            check.problems.append(f"{key}: line {number} has {len(row)} cells, the header "
                                  f"{len(header)}")
            continue
        counts[row[id_column]] += 1
        by_id[row[id_column]] = row
    base = path.parent.parent  # a member's rows name cutouts from its own folder
    for dia_source_id in sorted(expected):
        if counts[dia_source_id] != 1:
            what = "missing" if not counts[dia_source_id] else f"{counts[dia_source_id]} times"
            check.problems.append(f"{dia_source_id}: {what} in {key}")
            report.broken.append(dia_source_id)
            continue
        row = by_id[dia_source_id]
        bad = [(column, row[header.index(column)], problem) for column in PATH_COLUMNS
               if column in header and row[header.index(column)]
               and (problem := fits_problem(base / row[header.index(column)]))]
        if bad:
            check.problems.append(f"{dia_source_id}: "
                                  + ", ".join(f"{column} {problem}" for column, _, problem in bad))
            report.broken_cutouts[dia_source_id] = [
                (column.split("_")[0], (base / cutout).relative_to(root).as_posix())
                for column, cutout, _ in bad]
            continue
        check.whole += 1


def cut_to_whole_rows(path: Path) -> int:
    """Cut a CSV file after its last newline; its new length."""
    data = path.read_bytes()
    length = data.rfind(b"\n") + 1
    with open(path, "r+b") as handle:
        handle.truncate(length)
        os.fsync(handle.fileno())
    return length


def broker_settings(settings: Settings | None) -> str:
    """Why the partition check cannot ask a broker ('' when it can)."""
    if settings is None or not settings.kafka.get("bootstrap.servers"):
        return ("no Kafka settings given (--bootstrap-servers, --group-id, --topic or "
                "--config, as for consume)")
    if settings.from_paths:
        return "the source is files (--from), which carry no offsets"
    return ""


def verify(output_dir: Path, repair: bool = False,
           settings: Settings | None = None) -> VerifyReport:
    """Check every ledger entry against the files (root and members) and, given the Kafka
    settings, the partitions against the group's committed offsets; optionally forget the broken
    rows and refill what the broker still holds. Without `repair` it writes nothing (a
    collection on a read-only disk can be verified) and shares the root's lock with other
    readers; either way no consumer may be writing at the root."""
    report = VerifyReport()
    if repair and settings is not None:
        # Refused before the ledger forgets anything: a repair that cannot read its files
        # must leave everything as it found it.
        for path in settings.from_paths:
            if not Path(path).exists():
                raise ConfigurationError(f"verify --repair --from: no such file or folder: "
                                         f"{path}")
    with opened(output_dir, read_only=not repair) as output:
        assert output.ledger is not None
        db = output.ledger.db
        lengths = output.ledger.csv_lengths()
        retired = output.ledger.retired_by_output()
        homes: dict[str, set[str]] = {}
        for dia_source_id, key in db.execute("SELECT dia_source_id, csv_file FROM alerts"):
            homes.setdefault(key, set()).add(dia_source_id)
        for key in sorted(homes):
            match = NIGHT.search(key)
            night = match.group(1) if match else "unknown"
            check = report.nights.setdefault(night, NightCheck(night))
            check.in_ledger += len(homes[key])
            if key not in lengths or night in retired.get(output_of(key), ()):
                # Retention's choice, not damage (a CSV an older release removed by age has no
                # night record, and is retired too): its alerts stay known, never revived.
                check.retired += len(homes[key])
                continue
            check_file(output.root, key, lengths[key], homes[key], report, check)
        say_gone_by_age(report, output.ledger_root, homes, lengths, retired,
                        output.ledger.archive_listing())
        check_broker(report, output.ledger, settings)
        report.archive = check_archive(output.ledger_root, output.ledger.archive_listing(), db)
        if repair and report.broken:
            with output.ledger.transaction() as tx:
                tx.executemany("DELETE FROM alerts WHERE dia_source_id = ?",
                               [(dia_source_id,) for dia_source_id in report.broken])
                # A vanished file starts again from nothing: recovery must not trust its old
                # length (rows past what a new batch records would survive a crash).
                tx.executemany("DELETE FROM csv_files WHERE name = ?",
                               [(key,) for key in report.missing_files])
                # A file cut short ends in half a row: cut it to its last whole row, so rows
                # written again start on a line of their own.
                tx.executemany("UPDATE csv_files SET length = ? WHERE name = ?",
                               [(cut_to_whole_rows(output.ledger_root / key), key)
                                for key in report.short_files])
            report.forgotten = len(report.broken)
        if repair:
            repair_from_source(output, report, settings)
    return report


def say_gone_by_age(report: VerifyReport, root: Path, homes: dict[str, set[str]],
                    lengths: dict[str, int], retired: dict[str, set[str]],
                    listing: list[ArchiveFile]) -> None:
    """A night of which every CSV file and every cutout is gone was most likely deleted by age
    outside `cleanup` (the specification's `find -mtime` lines), not lost: say so in one line
    instead of a line per file; its alerts stay broken (`--repair` still writes them again)."""
    nights: dict[tuple[str, str], list[str]] = {}
    for key in homes:
        if (match := NIGHT.search(key)) and key in lengths \
                and match.group(1) not in retired.get(output_of(key), ()):
            nights.setdefault((output_of(key), match.group(1)), []).append(key)
    with_cutouts: dict[str, set[str]] = {}  # output -> diaSourceIds with a cutout on disk
    for (output, night), keys in sorted(nights.items()):
        if any((root / key).exists() for key in keys):
            continue
        if output not in with_cutouts:
            folder = root / output / "cutouts"
            with_cutouts[output] = {path.name.split("_", 1)[0] for path in folder.glob("*.fits")}
        alerts = set().union(*(homes[key] for key in keys))
        if alerts & with_cutouts[output]:
            continue
        partition = (root / output / "archive" / f"dayObs={night[:4]}-{night[4:6]}-{night[6:]}"
                     ).relative_to(root).as_posix()
        archived = [file.name for file in listing if file.name.startswith(partition + "/")]
        left = [name for name in archived if (root / name).is_file()]
        files = f"{len(keys):,} CSV file{'s' if len(keys) > 1 else ''}, their cutouts"
        what = (f"every file of night {night}" if not left else
                f"every CSV file and cutout of night {night}")
        archive = ("" if not archived else f", its archive partition {partition}" if not left
                   else f"; its archive partition {partition} still holds them")
        age = (dt.datetime.strptime(current_day_obs(), "%Y%m%d")
               - dt.datetime.strptime(night, "%Y%m%d")).days
        retire = (f"`lsst-alerts cleanup --days N` (N at most {age}) records such nights as "
                  "retired; otherwise they are lost: `verify --repair`" if age >= 1 else
                  "cleanup never retires tonight: they are lost: `verify --repair`")
        check = report.nights[night]
        check.gone_by_age = True
        check.problems = [
            f"{what}{' in ' + output if output else ''} is gone "
            f"({len(alerts):,} alerts: {files}{archive}): "
            f"deleted outside `lsst-alerts cleanup` (find -mtime?); {retire}",
            *(problem for problem in check.problems
              if not any(problem.startswith(f"{key}: missing") for key in keys))]


def repair_from_source(output: OutputDir, report: VerifyReport,
                       settings: Settings | None) -> None:
    """Write again what the alert files (--from) or the broker still hold, or say in
    report.repair_note why nothing can be."""
    from .verify_refill import Refill, broker_batches, file_batches, refill

    if settings is not None and settings.from_paths:
        result = Refill(source=", ".join(settings.from_paths))
        batches = file_batches(settings.from_paths)
    elif settings is not None and report.partitions is not None:
        result = Refill()
        batches = broker_batches(settings, report.partitions, result)
        result.deleted += [f"{topic}: the broker does not have this topic"
                           for topic in report.missing_topics]
    else:
        report.repair_note = ("nothing was written again: verify --repair needs the Kafka "
                              "settings (as for consume) or --from DIR with the alert files")
        return
    damaged = [file for file in report.archive.damaged if file.dia_source_ids is not None] \
        if report.archive else []
    wanted = {i: file.name for file in damaged for i in file.dia_source_ids or []}
    result.set_aside = set_aside(output.ledger_root, [file.name for file in damaged])
    report.refill = refill(output, settings, batches, set(report.broken),
                           report.broken_cutouts, wanted, result)
    gone = sorted({*report.refill.gone, *report.refill.archive_gone})
    report.refill.survivors = survivors(output, gone)


def set_aside(root: Path, names: list[str]) -> list[str]:
    """Move damaged archive files to state/damaged/ (kept for whoever wants to salvage them;
    out of the archive, where recovery would delete an unlisted file); where each went."""
    moved = []
    for name in names:
        path, target = root / name, root / DAMAGED_FOLDER / name
        if path.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target.relative_to(root).as_posix())
    return moved


def survivors(output: OutputDir, gone: list[str]) -> dict[str, list[str]]:
    """What is left on disk of each alert gone for good: its CSV row, its cutouts, its row in a
    whole archive file (paths from the ledger's root)."""
    assert output.ledger is not None
    root = output.ledger_root
    homes = output.ledger.homes(gone)
    archived: dict[str, str] = {}
    for listed in output.ledger.archive_listing():
        for number in unpack_ids(listed.dia_source_ids) or []:
            archived[str(number)] = listed.name
    cutout_folders = [root / "cutouts", *sorted(root.glob("members/*/cutouts"))]
    left: dict[str, list[str]] = {}
    for dia_source_id in gone:
        found = [f"CSV row in {homes[dia_source_id]}"] if dia_source_id in homes else []
        if not dia_source_id.isdigit():
            left[dia_source_id] = found
            continue
        found += [f"cutout {path.relative_to(root).as_posix()}" for folder in cutout_folders
                  for path in sorted(folder.glob(f"{dia_source_id}_*.fits"))]
        if dia_source_id in archived:
            found.append(f"archive row in {archived[dia_source_id]}")
        left[dia_source_id] = found
    return left


def check_broker(report: VerifyReport, ledger: Any, settings: Settings | None) -> None:
    """Fill report.partitions from the broker, or say in partition_note why it cannot."""
    why = broker_settings(settings)
    if why or settings is None:
        report.partition_note = f"the partition check needs the broker: {why}"
        return
    from confluent_kafka import KafkaException

    from .verify_broker import check_partitions

    try:
        report.partitions, report.missing_topics = check_partitions(ledger, settings.kafka,
                                                                    settings.topics)
    except KafkaException as exc:
        report.partition_note = f"the partition check needs the broker: {exc.args[0].str()}"
