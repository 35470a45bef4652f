"""Git LFS pointers: Code.org keeps the Dance AI maps (and caches) in Git LFS, so a checkout without
``git lfs pull`` holds a three-line pointer file instead of the data. Say so, instead of failing with
a JSON or pickle error."""

from __future__ import annotations

from pathlib import Path

from lib.errors import InvalidRequestError

#: The first line of every Git LFS pointer file (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"


def is_lfs_pointer(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf").startswith(POINTER_PREFIX)


def refuse_lfs_pointer(data: bytes, path: Path | str, field: str) -> None:
    """Raise a clear error when ``data`` (the start of ``path``) is a Git LFS pointer."""
    if is_lfs_pointer(data):
        raise InvalidRequestError(
            f"{path}: this is a Git LFS pointer, not the file itself: run git lfs pull "
            "(in the repository that holds it) and try again",
            field=field,
        )
