"""A session's /mnt/data as the host sees it, read and written without ever following a link.

Code in the sandbox may plant symlinks or hard links there; the host walks and opens every
path component with O_NOFOLLOW relative to directory descriptors, and reads only regular
files with one link."""

import contextlib
import os
import stat
import subprocess
from pathlib import Path
from typing import BinaryIO

from codeinterp.sandbox.types import SandboxFile, SandboxError

CHUNK = 1024 * 1024


def _parts(name: str) -> list[str]:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise SandboxError(f"Not a path inside /mnt/data: {name!r}")
    return parts


def _open_dir(root: Path, parts: list[str], uid: int | None = None) -> int:
    """A descriptor of root/parts, never through a link; missing directories are made (owned by
    `uid`) when a uid is given."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts:
            if uid is not None:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    os.chown(part, uid, uid, dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    pass
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def create_file(root: Path, name: str, uid: int) -> BinaryIO:
    """`name` under root, made anew (replacing whatever was there, a link included, never written
    through one) and owned by the session's `uid`, open for writing; missing parents are made."""
    *dirs, filename = _parts(name)
    dir_fd = _open_dir(root, dirs, uid)
    try:
        try:
            os.unlink(filename, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
        os.fchown(fd, uid, uid)
        return os.fdopen(fd, "wb")
    finally:
        os.close(dir_fd)


def write_file(root: Path, name: str, data: bytes, uid: int) -> None:
    with create_file(root, name, uid) as out:
        out.write(data)


def open_file(root: Path, name: str) -> BinaryIO:
    """The regular, singly linked file `name` under root, open for reading (never through a link)."""
    *dirs, filename = _parts(name)
    try:
        dir_fd = _open_dir(root, dirs)
    except (FileNotFoundError, NotADirectoryError, OSError) as error:
        raise FileNotFoundError(f"/mnt/data/{name} is not a readable file") from error
    try:
        try:
            fd = os.open(filename, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as error:
            raise FileNotFoundError(f"/mnt/data/{name} is not a readable file") from error
        data = os.fdopen(fd, "rb")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            data.close()
            raise FileNotFoundError(f"/mnt/data/{name} is not a regular file")
        return data
    finally:
        os.close(dir_fd)


MAX_DEPTH = 32  # directory levels walked below /mnt/data
MAX_ENTRIES = 20000  # directory entries looked at per walk, whatever their kind


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of the regular, singly linked files under root.

    The walk is bounded (depth and entries looked at), so that a session that nests or
    multiplies directories cannot make the host's walks slow or deep."""
    return _walk(root, MAX_ENTRIES)[0]


def small_snapshot(root: Path, max_entries: int) -> dict[str, tuple[int, int]] | None:
    """`snapshot(root)` if root holds at most `max_entries` entries (cheap enough to take without
    a thread), else None."""
    found, complete = _walk(root, max_entries)
    return found if complete else None


def _walk(root: Path, max_entries: int) -> tuple[dict[str, tuple[int, int]], bool]:
    """(what `snapshot` returns, whether every entry was looked at within max_entries)"""
    found: dict[str, tuple[int, int]] = {}
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return found, True
    pending = [(root_fd, "", 0)]
    seen = 0
    try:
        while pending:
            dir_fd, prefix, depth = pending.pop()
            try:
                with contextlib.suppress(OSError), os.scandir(dir_fd) as entries:
                    for entry in entries:
                        seen += 1
                        if seen > max_entries:
                            return found, False
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:  # removed (or replaced) by the code since it was listed
                            continue
                        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                            found[prefix + entry.name] = (info.st_size, info.st_mtime_ns)
                        elif stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH:
                            try:
                                sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                              dir_fd=dir_fd)
                            except OSError:
                                continue
                            pending.append((sub, f"{prefix}{entry.name}/", depth + 1))
            finally:
                os.close(dir_fd)
    finally:
        for dir_fd, _, _ in pending:
            os.close(dir_fd)
    return found, True


def changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[SandboxFile]:
    return [SandboxFile(path=path, size=size, mtime=mtime / 1e9)
            for path, (size, mtime) in sorted(after.items()) if before.get(path) != (size, mtime)]


def remove_tree(root: Path) -> None:
    """Remove a session's directory, however deep or wide the code made it (never following links)."""
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(root)], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
