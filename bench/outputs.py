"""Where a benchmark's runs write: each run a folder of its own, kept until the benchmark ends.

Deleting a run's output right before the next run would slow that next run, on some disks by
far: on ext4 without a journal (this project's 2-core machine), the kernel prefers not to reuse
an inode freed in the last minute or two, and every file created meanwhile scans past each
such inode of its block group (fs/ext4/ialloc.c, `recently_deleted`). Measured here: creating a
34 KB cutout file took 0.65 ms right after 45,000 files were deleted, 0.05 ms otherwise; 70 s
after the deletion (with a sync) it still took 0.63 ms, 120 s after it 0.05 ms when few files
were created meanwhile. The kernel's limits are 60 s, and 360 s while the inode's table block
is dirty, as new files in the same block group keep it. Runs that alternate with deletions
in between would each pay that or not by their place in the order. So outputs are kept; when
the disk cannot hold the next one, the kept ones are deleted, the disk synced and the longer
limit waited out, said in a line.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

FORGET_SECONDS = 400  # past the kernel's 360 s: the freed inodes are reused as fresh ones
MARGIN = 2_000_000_000  # bytes the disk keeps free besides the next output


def folder_bytes(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in folder.rglob("*") if entry.is_file())


class RunFolders:
    """A fresh output folder per run under `root`, deleted only when the disk needs the room
    (then the deleted inodes' window is waited out) or by `clear`, at the end."""

    def __init__(self, root: Path):
        self.root = root
        self.kept: list[Path] = []
        self.made = 0

    def new(self, name: str, expect_bytes: int) -> Path:
        free = shutil.disk_usage(self.root).free
        if self.kept and free < expect_bytes + MARGIN:
            print(f"  the disk has {free / 1e9:.1f} GB free, the next output needs about "
                  f"{expect_bytes / 1e9:.1f} GB: deleting the {len(self.kept)} outputs kept so "
                  f"far, then waiting {FORGET_SECONDS} s so that the next run does not pay for "
                  "the deletion (bench/outputs.py)", flush=True)
            self.delete_kept()
            time.sleep(FORGET_SECONDS)
        self.made += 1
        folder = self.root / f"out-{self.made:02d}-{name}"
        self.kept.append(folder)
        return folder

    def delete_kept(self) -> None:
        for folder in self.kept:
            shutil.rmtree(folder, ignore_errors=True)
        self.kept = []
        os.sync()

    def clear(self) -> None:
        """At the end: nothing is measured after this."""
        self.delete_kept()
