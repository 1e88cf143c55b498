"""The key naming a stack's Swarm secrets: made once, private, outside the repository."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from dockwork.errors import DeployError
from dockwork.swarm import keys

if TYPE_CHECKING:
    from pathlib import Path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_key_is_made_once_private_and_per_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    previous = os.umask(0)  # the most permissive umask: the modes must not depend on it
    try:
        key = keys.secret_key("shop")
    finally:
        os.umask(previous)
    directory = tmp_path / "cache" / "dockwork" / "swarm-keys"
    assert keys.key_dir() == directory
    assert len(key) == keys.KEY_BYTES
    assert mode(directory) == 0o700
    assert mode(directory / "shop.key") == 0o600
    assert (directory / "shop.key").read_text().strip() == key.hex()
    assert keys.secret_key("shop") == key, "the same key on every deploy"
    assert keys.secret_key("other") != key, "each stack its own"
    assert sorted(p.name for p in directory.iterdir()) == ["other.key", "shop.key"]


def test_deploys_making_the_key_at_once_all_get_the_same(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        found = set(pool.map(lambda _: keys.secret_key("shop", tmp_path / "k"), range(64)))
    assert len(found) == 1
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["shop.key"], "no file left over"


def test_a_key_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "k"
    keys.secret_key("shop", directory)
    planted = tmp_path / "planted.key"
    planted.write_text("00" * keys.KEY_BYTES)
    planted.chmod(0o600)
    (directory / "evil.key").symlink_to(planted)
    with pytest.raises(DeployError, match=r"evil\.key .* symbolic link"):
        keys.secret_key("evil", directory)


def test_a_key_directory_that_is_a_link_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "k").symlink_to(real)
    with pytest.raises(DeployError, match="symbolic link"):
        keys.secret_key("shop", tmp_path / "k")
    assert not list(real.iterdir()), "nothing written through the link"


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "k"
    keys.secret_key("shop", directory)
    (directory / "shop.key").chmod(0o644)
    with pytest.raises(DeployError, match=r"others can reach it \(mode 0644\)"):
        keys.secret_key("shop", directory)
    (directory / "shop.key").chmod(0o600)
    directory.chmod(0o755)
    with pytest.raises(DeployError, match=r"k holds the keys .*\(mode 0755\)"):
        keys.secret_key("shop", directory)


def test_a_damaged_key_is_refused_not_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "k"
    keys.secret_key("shop", directory)
    (directory / "shop.key").write_text("not a key\n")
    with pytest.raises(DeployError, match="holds no key"):
        keys.secret_key("shop", directory)
    assert (directory / "shop.key").read_text() == "not a key\n"


def test_a_cache_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeployError, match="cannot be kept at") as info:
        keys.secret_key("shop", blocker / "k")
    assert "Nothing was deployed" in info.value.message
