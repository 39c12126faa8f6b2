"""File-system durability helpers shared by the storage files."""

from __future__ import annotations

import os


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a directory's entries (new, renamed or removed files) durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
