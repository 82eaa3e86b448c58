"""Owner-only data files: directories 0700, files 0600.

The data directory holds the SQLite database (with its ``-wal`` and
``-shm`` files), the files directory and the generated server secret:
other local users must not read them. New directories and files are
created with these modes; existing ones owned by this process's user are
narrowed to them at start (a directory made by an older version, or by a
permissive umask). Files owned by someone else are left alone (the
operator chose that layout).

SQLite creates ``-wal`` and ``-shm`` with the mode of the database file,
so creating the database file 0600 before SQLite opens it covers them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "private_sqlite"]

DIR_MODE = 0o700
FILE_MODE = 0o600
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _narrow(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` if this user owns it and it allows more."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != mode:
        path.chmod(mode)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700, or narrow an existing one."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _narrow(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists; narrow it if it does."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        _narrow(path, FILE_MODE)


def private_sqlite(path: str) -> None:
    """The SQLite database at ``path`` and its side files, 0600 (see the module docstring).

    An empty file is what SQLite makes of a new database, so creating it
    first changes nothing else.
    """
    db = Path(path)
    if not db.parent.is_dir():
        return  # SQLite reports the missing directory when it opens the file
    private_file(db)
    for suffix in _SQLITE_SIDE_FILES:
        _narrow(db.with_name(db.name + suffix), FILE_MODE)
