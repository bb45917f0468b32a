"""The render's output directory: it may only ever remove files it wrote itself.

A render replaces the previous render in ``--out DIR`` (stale objects must not survive a
rename).  Deleting "every ``*.yaml``" there would delete ``Pulumi.yaml`` with ``--out .``, or a
user's manifests in any other directory.  So each render writes a manifest,
:data:`MANIFEST`, listing the files it wrote, and the next render:

* uses a missing or empty directory as is;
* in a directory holding a manifest, removes exactly the files it lists - and refuses if the
  directory holds anything else (an unknown file, a subdirectory, a symlink);
* accepts a render from before the manifest existed only if *every* entry is a file that render
  wrote (``*.yaml`` opening with its ``# pulumi: `` header, or ``stack-outputs.json``);
* refuses any other non-empty directory, naming what it found, before touching anything.

:class:`OutDirError` says why and what to do (choose an empty or new directory).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

MANIFEST = ".airflow-k8s-render.json"
TOOL = "airflow-k8s offline render"


class OutDirError(ValueError):
    """The output directory holds files this tool did not write."""


def _written_before(directory: Path) -> set[str] | None:
    path = directory / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutDirError(
            f"{path}: unreadable render manifest ({exc}); remove the directory or choose another"
        ) from exc
    files = data.get("files") if isinstance(data, dict) and data.get("tool") == TOOL else None
    if not isinstance(files, list) or not all(isinstance(f, str) and "/" not in f for f in files):
        raise OutDirError(f"{path}: not a render manifest of this tool; choose another --out directory")
    return set(files)


LEGACY_OUTPUTS = "stack-outputs.json"
LEGACY_HEADER = b"# pulumi: "


def _legacy_render_file(entry: Path) -> bool:
    """A file an earlier render (without a manifest) wrote: recognisable by name and header."""
    if entry.is_symlink() or not entry.is_file():
        return False
    if entry.name == LEGACY_OUTPUTS:
        return True
    if entry.suffix != ".yaml":
        return False
    with entry.open("rb") as handle:
        return handle.read(len(LEGACY_HEADER)) == LEGACY_HEADER


def prepare(directory: Path) -> None:
    """Make ``directory`` ready for a new render, removing only the previous render's files."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise OutDirError(f"--out {directory} is not a directory")
    if not directory.exists():
        directory.mkdir(parents=True)
        return
    entries = {entry.name: entry for entry in directory.iterdir()}
    if not entries:
        return
    previous = _written_before(directory)
    if previous is None and all(_legacy_render_file(entry) for entry in entries.values()):
        previous = set(entries)
    if previous is None:
        shown = ", ".join(sorted(entries)[:5]) + (" ..." if len(entries) > 5 else "")
        raise OutDirError(
            f"--out {directory} is not empty and holds no earlier render ({shown}); "
            "the render only replaces its own output: choose a new or empty directory"
        )
    foreign = sorted(
        name
        for name, entry in entries.items()
        if name != MANIFEST and (name not in previous or entry.is_symlink() or not entry.is_file())
    )
    if foreign:
        raise OutDirError(
            f"--out {directory} holds files the render did not write: {', '.join(foreign)}; "
            "move them away or choose another directory"
        )
    for name in previous:
        if name in entries:
            entries[name].unlink()
    (directory / MANIFEST).unlink(missing_ok=True)


def record(directory: Path, files: Iterable[str]) -> None:
    """Write the manifest of the files this render wrote into ``directory``."""
    data = {"tool": TOOL, "files": sorted(files)}
    (directory / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
