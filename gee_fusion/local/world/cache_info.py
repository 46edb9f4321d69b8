"""What the demo world's disk cache holds (``gee-fusion world cache --info``) and its clearing
(``--clear``); the cache itself is :mod:`gee_fusion.local.world.disk_cache`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import uuid
from pathlib import Path

from gee_fusion.local.world import disk_cache


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """One key folder of the cache.

    Attributes:
        name: Folder name (generator version - config hash).
        current: Whether it was written by this generator version.
        config: The world config's fields, as recorded in ``key.json`` (empty if missing).
        blocks: Block files.
        bytes: Their total size.
    """

    name: str
    current: bool
    config: dict[str, object]
    blocks: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """The disk cache as found on disk.

    Attributes:
        root: Its folder.
        enabled: Whether the tier is on in this environment.
        limit_bytes: The size bound.
        keys: Its key folders.
    """

    root: Path
    enabled: bool
    limit_bytes: int
    keys: tuple[KeyInfo, ...]

    @property
    def blocks(self) -> int:
        """Block files, all keys."""
        return sum(k.blocks for k in self.keys)

    @property
    def bytes(self) -> int:
        """Total size of the block files, all keys."""
        return sum(k.bytes for k in self.keys)

    def lines(self) -> list[str]:
        """A readable report: location, switch and bound, size, one line per key."""
        state = (
            f"on, bound {self.limit_bytes / 2**20:.0f} MiB"
            if self.enabled
            else f"off ({disk_cache.ENV_SWITCH}=0)"
        )
        out = [
            f"location: {self.root} ({state}; set {disk_cache.ENV_DIR} to move it)",
            f"size: {self.bytes / 2**20:.1f} MiB in {self.blocks} blocks, {len(self.keys)} keys",
        ]
        for key in self.keys:
            config = " ".join(f"{k}={v}" for k, v in key.config.items()) or "config unknown"
            age = "current generator" if key.current else "older generator"
            out.append(f"  {key.name} ({age}; {config}): {key.blocks} blocks, {key.bytes / 2**20:.1f} MiB")
        return out


def _recorded_config(folder: Path) -> dict[str, object]:
    try:
        data = json.loads((folder / disk_cache.KEY_FILE).read_text())
        config = data.get("config", {}) if isinstance(data, dict) else {}
        return dict(config) if isinstance(config, dict) else {}
    except (OSError, ValueError):
        return {}


def info(root: Path | None = None) -> CacheInfo:
    """What the cache folder holds (``root`` defaults to :func:`cache_root`)."""
    root = disk_cache.cache_root() if root is None else root
    current = disk_cache.generator_version()[:12]
    keys = []
    for folder in disk_cache._key_dirs(root):
        files = list(disk_cache._files(folder))
        keys.append(
            KeyInfo(
                name=folder.name,
                current=folder.name.startswith(current + "-"),
                config=_recorded_config(folder),
                blocks=len(files),
                bytes=sum(size for _, size, _ in files),
            )
        )
    return CacheInfo(
        root=root, enabled=disk_cache.enabled(), limit_bytes=disk_cache.limit_bytes(), keys=tuple(keys)
    )


def clear(root: Path | None = None) -> CacheInfo:
    """Remove every key folder of the cache (nothing else in the folder); returns what was there.

    Each key folder is first renamed (atomically) to a hidden name, then deleted, so a process
    writing meanwhile starts a fresh key folder instead of finding a half-deleted one.
    """
    root = disk_cache.cache_root() if root is None else root
    before = info(root)
    for key in before.keys:
        doomed = root / f".{key.name}.clearing.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            os.replace(root / key.name, doomed)
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
    with contextlib.suppress(OSError):
        for left in root.glob(".*.clearing.*"):  # an earlier clear that was interrupted
            shutil.rmtree(left, ignore_errors=True)
    disk_cache.forget(root)
    return before
