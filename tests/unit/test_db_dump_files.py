"""How `inv db.dump` names its finished file (db.place), on real files: a hard link where
the filesystem has them, a no-replace rename where it has none, and never a lost dump.
The whole task on a real vfat filesystem is in tests/e2e/test_db_faults.py."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dockwork.errors import DockworkError
from dockwork.tasks import db

if TYPE_CHECKING:
    from collections.abc import Iterator

DUMP = b"PGDMP" + bytes(range(256)) * 64


def finished(directory: Path) -> Path:
    partial = directory / ".x.dump.partial-1234"
    partial.write_bytes(DUMP)
    return partial


def test_a_hard_link_names_it(tmp_path: Path) -> None:
    partial = finished(tmp_path)
    db.place(partial, tmp_path / "x.dump")
    assert (tmp_path / "x.dump").read_bytes() == DUMP
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dump"]


@contextlib.contextmanager
def fat(tmp_path: Path) -> Iterator[Path]:
    """A real FAT filesystem through fusefat (no kernel vfat needed; root and /dev/fuse)."""
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        pytest.skip("mounting a FUSE filesystem needs root and /dev/fuse")
    if shutil.which("mkfs.vfat") is None or shutil.which("fusefat") is None:
        pytest.skip("needs mkfs.vfat (dosfstools) and fusefat")
    image, mount = tmp_path / "fat.img", tmp_path / "fat"
    mount.mkdir()
    with image.open("wb") as f:
        f.truncate(16 * 1024 * 1024)
    subprocess.run(["mkfs.vfat", str(image)], check=True, capture_output=True)
    subprocess.run(
        ["fusefat", "-o", "rw+", str(image), str(mount)], check=True, capture_output=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False, capture_output=True)


def test_on_a_real_fat_filesystem_it_is_renamed_into_place(tmp_path: Path) -> None:
    with fat(tmp_path) as mount:
        partial = finished(mount)
        with pytest.raises(PermissionError):
            os.link(partial, mount / "probe")
        assert not db._reserve(mount / ".probe"), "FAT keeps no Unix modes"
        (mount / ".probe").unlink()
        db.place(partial, mount / "x.dump")
        assert (mount / "x.dump").read_bytes() == DUMP
        assert sorted(p.name for p in mount.iterdir()) == ["x.dump"]


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK])
def test_any_refused_link_falls_back_to_a_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    # fallback, labelled: these errnos come from filesystems this machine may not mount
    # (SMB shares, exFAT); os.link alone is made to fail, the files are real
    def refuse(*_: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", refuse)
    partial = finished(tmp_path)
    db.place(partial, tmp_path / "x.dump")
    assert (tmp_path / "x.dump").read_bytes() == DUMP
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dump"]


@pytest.mark.parametrize("links", [True, False], ids=["link", "no-link"])
def test_a_file_that_appeared_meanwhile_is_kept_and_so_is_the_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    if not links:
        monkeypatch.setattr(os, "link", lambda src, dst: (_ for _ in ()).throw(PermissionError()))
    (tmp_path / "x.dump").write_text("precious")
    partial = finished(tmp_path)
    with pytest.raises(DockworkError) as caught:
        db.place(partial, tmp_path / "x.dump")
    assert (tmp_path / "x.dump").read_text() == "precious"
    assert partial.read_bytes() == DUMP, "the finished dump is never deleted"
    assert f"the complete dump is kept as {partial}" in caught.value.message


def test_reserving_refuses_an_existing_name_and_sees_a_filesystem_with_modes(
    tmp_path: Path,
) -> None:
    assert db._reserve(tmp_path / ".p")
    assert (tmp_path / ".p").stat().st_size == 0
    with pytest.raises(DockworkError) as caught:
        db._reserve(tmp_path / ".p")
    assert "nothing was dumped" in caught.value.message
