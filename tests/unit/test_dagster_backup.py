"""dagster-backup.py: rotation, archive checks and the refusal of unsafe directories."""

from __future__ import annotations

import importlib.util
import io
import os
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/dagster/files/dagster-backup.py"
spec = importlib.util.spec_from_file_location("dagster_backup", SCRIPT)
backup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(backup)


class Settings:
    keep = 1


def _touch(directory, *names):
    for name in names:
        (directory / name).write_bytes(b"x")


def test_rotation_keeps_the_newest_the_one_just_taken_and_the_newest_pre_upgrade(tmp_path):
    _touch(
        tmp_path,
        "dagster-20260101T000000Z-before-1.13.27-from-dagster-1.12.22-abc.pgc",
        "dagster-20260102T000000Z-before-1.13.28-from-dagster-1.13.27-def.pgc",
        "dagster-20260103T000000Z-manual.pgc",
        "dagster-20260104T000000Z-scheduled.pgc",
        "dagster-20260105T000000Z-manual.pgc",
        "home-20260103T000000Z.tar.gz",
        "home-20260105T000000Z.tar.gz",
        "safety-20260101T000000Z-before-restore.pgc",
        "safety-20260102T000000Z-before-restore.pgc",
        "unrelated.txt",
    )
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        removed = backup.rotate(Settings(), fd, ["dagster-20260104T000000Z-scheduled.pgc"])
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dagster-20260102T000000Z-before-1.13.28-from-dagster-1.13.27-def.pgc",
        "dagster-20260104T000000Z-scheduled.pgc",
        "dagster-20260105T000000Z-manual.pgc",
        "home-20260105T000000Z.tar.gz",
        "safety-20260102T000000Z-before-restore.pgc",
        "unrelated.txt",
    ]
    assert len(removed) == 4


def _archive(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            archive.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)


def test_storage_archive_is_accepted(tmp_path):
    path = tmp_path / "home.tar.gz"
    _archive(path, [("storage", tarfile.DIRTYPE, ""), ("storage/a", tarfile.REGTYPE, ""),
                    ("storage/link", tarfile.SYMTYPE, "/etc/shadow")])
    assert backup.verify_home(str(path))["members"] == 3


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (("/etc/cron.d/x", tarfile.REGTYPE, ""), "absolute"),
        (("storage/../../etc/x", tarfile.REGTYPE, ""), "'..'"),
        (("dagster/dagster.yaml", tarfile.REGTYPE, ""), "outside storage/"),
        (("storage/hard", tarfile.LNKTYPE, "/etc/shadow"), "hard link"),
        (("storage/dev", tarfile.CHRTYPE, ""), "not a file"),
    ],
)
def test_unsafe_archive_members_are_refused(tmp_path, member, reason):
    path = tmp_path / "home.tar.gz"
    _archive(path, [("storage", tarfile.DIRTYPE, ""), member])
    with pytest.raises(backup.Refused, match=reason):
        backup.verify_home(str(path))


def test_a_dump_is_not_a_storage_archive(tmp_path):
    path = tmp_path / "dump.pgc"
    path.write_bytes(b"PGDMP" + b"\0" * 100)
    with pytest.raises(backup.Refused, match="not a gzip tar archive"):
        backup.verify_home(str(path))


def test_an_archive_is_not_a_dump(tmp_path):
    path = tmp_path / "home.tar.gz"
    _archive(path, [("storage", tarfile.DIRTYPE, "")])
    with pytest.raises(backup.Refused, match="not a custom-format PostgreSQL dump"):
        backup.verify_dump(str(path))


def test_a_backup_directory_under_a_world_writable_one_is_refused(tmp_path):
    # /tmp is writable by everyone: another user could swap what is under it.
    with pytest.raises(backup.Refused, match="writable by root only"):
        backup.open_root_dir(str(tmp_path / "backups"), create_mode=0o700)


def test_a_link_on_the_way_is_refused():
    with pytest.raises(backup.Refused, match="not a link|a directory is required"):
        backup.open_root_dir("/proc/self/cwd/backups", create_mode=0o700)
