"""The output policy of every command that writes (``synth``, ``split``, ``predict``).

- a non-empty output is refused unless ``--overwrite`` is given;
- the output location is checked (created, written to) before any work starts;
- a folder of results is written into a hidden sibling and renamed into place only when complete,
  so a killed or failed run leaves the old output or nothing, never a mixture.

:func:`check_files` covers outputs that are single files (each written atomically by
:mod:`tagvis_lib.utils.atomic`), :func:`staged_folder` outputs that are folders.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import TagvisError
from ..utils.atomic import _UMASK


def _is_non_empty(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()


def _writable_parent(path: Path) -> None:
    """Create ``path.parent`` and check a file can be made in it; TagvisError naming the path otherwise."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise TagvisError(f"{path}: cannot write there ({exc.strerror or exc})") from None


def check_files(paths: Sequence[str | os.PathLike], overwrite: bool) -> None:
    """Before any work: refuse existing ``paths`` without ``overwrite``, and check each can be written."""
    for p in map(Path, paths):
        if p.is_dir():
            raise TagvisError(f"{p}: is a directory; expected a file path")
        if p.exists() and not overwrite:
            raise TagvisError(f"{p}: exists; pass --overwrite to replace it")
        _writable_parent(p)


@contextmanager
def staged_folder(folder: str | os.PathLike, overwrite: bool) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``folder`` to write into; on success it replaces ``folder``.

    Refuses (before yielding) a non-empty ``folder`` without ``overwrite``, a ``folder`` that is a
    file, and a location that cannot be written. On an exception the sibling is removed and
    ``folder`` is left as it was.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TagvisError(f"{folder}: is a file; expected a folder for the outputs")
    if _is_non_empty(folder) and not overwrite:
        raise TagvisError(f"{folder}: is not empty; pass --overwrite to replace it, or choose another folder")
    _writable_parent(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(staging, folder)
    os.chmod(folder, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give the folder ordinary permissions
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

