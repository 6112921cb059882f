"""Refusing a network file system under a group's shared ledger (`consume --member`).

Members of a group share one SQLite ledger in WAL mode, whose readers and writers coordinate
through a memory-mapped `-shm` file: that works only for processes on one host, and SQLite's
file locks are unreliable over NFS and SMB. On a network file system members on two hosts could
both record the same alert, or corrupt the ledger, so consume refuses to start there.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ..errors import ConfigurationError

# File systems shared between hosts (kernel clients and FUSE ones, as /proc/mounts names them).
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "afs", "ceph", "glusterfs",
    "lustre", "beegfs", "gpfs", "ocfs2", "gfs2", "orangefs", "pvfs2", "davfs", "fuse.sshfs",
    "sshfs", "fuse.glusterfs", "fuse.ceph", "fuse.cephfs", "fuse.s3fs", "fuse.rclone",
    "fuse.gcsfuse", "fuse.davfs", "fuse.juicefs", "fuse.beegfs", "fuse.lustre",
})

_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """A /proc/mounts field with its octal escapes (\\040 for a space) decoded."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def mount_of(path: PurePosixPath, mounts: str) -> tuple[str, str] | None:
    """(mount point, file system type) of the mount holding an absolute, resolved path: the
    longest mount point it lies under (a later mount over the same point wins)."""
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point, fstype = unescape(fields[1]), fields[2]
        under = path == PurePosixPath(point) or PurePosixPath(point) in path.parents
        if under and (best is None or len(point) >= len(best[0])):
            best = (point, fstype)
    return best


def is_network(fstype: str) -> bool:
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith(("nfs", "fuse.nfs"))


def network_mount(path: PurePosixPath, mounts: str) -> tuple[str, str] | None:
    """The (mount point, type) of a network file system holding the path, else None."""
    found = mount_of(path, mounts)
    return found if found is not None and is_network(found[1]) else None


def refuse_network_filesystem(output_dir: Path, mounts_file: Path = Path("/proc/mounts")) -> None:
    """Raise ConfigurationError when the output directory is on a network file system."""
    try:
        mounts = mounts_file.read_text()
    except OSError:
        return  # not Linux: nothing to read the mounts from
    resolved = PurePosixPath(output_dir.resolve())
    found = network_mount(resolved, mounts)
    if found is not None:
        point, fstype = found
        raise ConfigurationError(
            f"--member needs the output directory on a local disk, but {resolved} is on a "
            f"network file system ({fstype} mounted at {point}); the group's members share "
            "its SQLite ledger, which cannot be shared between hosts. Put the output directory "
            "on a local disk and run the members on that host, or give each host its own "
            "--output-dir on its local disk (each then keeps its own ledger)")
