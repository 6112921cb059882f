"""`consume --member` refuses an output directory on a network file system (the group's shared
SQLite ledger needs one host), reading the mount table the way the kernel writes it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.errors import ConfigurationError
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.mounts import mount_of, network_mount, refuse_network_filesystem

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
fileserver:/export/alerts /data nfs4 rw,relatime,vers=4.2,rsize=1048576 0 0
/dev/sdb1 /data/local xfs rw,relatime 0 0
//nas/share /mnt/my\\040share cifs rw,relatime,vers=3.1.1 0 0
user@host:/srv /home/me/remote fuse.sshfs rw,nosuid,nodev 0 0
/dev/sdc1 /database ext4 rw 0 0
"""


@pytest.mark.parametrize(("path", "expected"), [
    ("/data/lsst_alerts", ("/data", "nfs4")),
    ("/data", ("/data", "nfs4")),
    ("/data/local/lsst_alerts", None),  # a local disk mounted inside the NFS share
    ("/database/lsst_alerts", None),  # /data is not a parent of /database
    ("/mnt/my share/alerts", ("/mnt/my share", "cifs")),  # \040 in the table is a space
    ("/home/me/remote/out", ("/home/me/remote", "fuse.sshfs")),
    ("/home/me/out", None),
    ("/tmp/out", None),
])
def test_a_network_file_system_is_told_from_a_local_one(path: str, expected: object) -> None:
    assert network_mount(PurePosixPath(path), MOUNTS) == expected


def test_the_longest_mount_point_wins_and_a_later_mount_over_the_same_point() -> None:
    table = MOUNTS + "server:/again /data/local nfs rw 0 0\n"
    assert mount_of(PurePosixPath("/data/local/x"), table) == ("/data/local", "nfs")
    assert mount_of(PurePosixPath("/srv/x"), MOUNTS) == ("/", "ext4")


def test_refusal_names_the_path_the_file_system_and_what_to_do(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text(f"/dev/sda1 / ext4 rw 0 0\nfiler:/vol {tmp_path} nfs rw 0 0\n")
    with pytest.raises(ConfigurationError) as refused:
        refuse_network_filesystem(tmp_path / "lsst_alerts", table)
    message = str(refused.value)
    assert str(tmp_path / "lsst_alerts") in message
    assert f"nfs mounted at {tmp_path}" in message
    assert "local disk" in message and "own --output-dir" in message
    table.write_text(f"/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 {tmp_path} ext4 rw 0 0\n")
    refuse_network_filesystem(tmp_path / "lsst_alerts", table)  # local: no refusal


def test_consume_as_a_member_on_a_network_file_system_exits_with_a_configuration_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lsst_alert_pipeline.pipeline import mounts

    table = tmp_path / "mounts"
    table.write_text(f"/dev/sda1 / ext4 rw 0 0\nfiler:/vol {tmp_path.resolve()} nfs4 rw 0 0\n")
    real = mounts.refuse_network_filesystem
    monkeypatch.setattr(consumer, "refuse_network_filesystem",
                        lambda output_dir: real(output_dir, table))
    settings = config.load(environ={}, flags={"from_paths": [str(tmp_path)], "member": "a",
                                              "output_dir": str(tmp_path / "out")})
    summary = consumer.consume(settings)
    assert summary.exit_code == exitcodes.CONFIG_ERROR
    assert not (tmp_path / "out").exists()  # refused before anything was created
