"""Unpacking downloaded archives (tar, compressed tar, zip) without trusting their member names."""

from __future__ import annotations

import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath


def is_safe_relative(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return bool(name) and not path.is_absolute() and ".." not in path.parts and not re.match(r"^[A-Za-z]:", name)


def safe_extract(archive: Path, target: Path) -> None:
    """Unpack a tar (plain or compressed) or zip archive into ``target``.

    Every member is checked before anything is written: a member that would land outside
    ``target`` (absolute, ``..``), a link, or anything but a regular file or folder refuses
    the whole archive.
    """
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, target)
    elif tarfile.is_tarfile(archive):
        _extract_tar(archive, target)
    else:
        raise OSError(f"{archive.name} is neither a tar nor a zip archive")


def _inside(root: Path, name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return False
    return (root / name).resolve().is_relative_to(root)


def _extract_tar(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            if not _inside(root, member.name) or not (member.isfile() or member.isdir()):
                kind = "link" if member.issym() or member.islnk() else "path"
                raise OSError(f"unsafe {kind} in archive: {member.name}")
        if hasattr(tarfile, "data_filter"):  # Python's own guard as well, where it exists
            tar.extractall(root, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(root, members=members)


def _extract_zip(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with zipfile.ZipFile(archive) as zipped:
        infos = zipped.infolist()
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise OSError(f"unsafe link in archive: {info.filename}")
            if not _inside(root, info.filename):
                raise OSError(f"unsafe path in archive: {info.filename}")
        for info in infos:
            destination = root / info.filename
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(info) as source, destination.open("wb") as out:
                shutil.copyfileobj(source, out)
