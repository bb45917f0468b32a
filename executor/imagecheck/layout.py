"""Reading a local image without running it: the few files and settings the image check needs.

:func:`open_image` accepts

* an unpacked root filesystem (a directory with ``etc/``, ``usr/``...);
* an OCI runtime bundle as ``umoci unpack`` writes it (``config.json`` + ``rootfs/``): the bundle's
  ``process.env`` and ``process.user`` are the image's environment and user;
* an OCI image layout (``oci-layout``, ``index.json``, ``blobs/``), as ``skopeo copy ... oci:DIR``
  or ``umoci`` keep images, as a directory or a tar of one;
* a ``docker save`` / ``skopeo copy ... docker-archive:`` tar (``manifest.json`` naming the config
  and the layer tars).

Layers are applied in order with OCI whiteouts (``.wh.<name>`` deletes, ``.wh..wh..opq`` empties
a directory).  Only what the checks read is kept: ``etc/passwd``, ``etc/group``, the ``METADATA``
of every ``*.dist-info`` directory, and which files exist.  Standard library only.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

KEPT_FILES = ("etc/passwd", "etc/group")
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class ImageLayoutError(ValueError):
    """The path is not an image this reader understands, or the image is damaged."""


@dataclass
class ImageFiles:
    """The parts of an image the checks read; ``config`` is the image config's ``config`` object."""

    source: str
    kind: str  # rootfs | bundle | oci | docker-archive
    config: dict[str, Any] | None = None  # None: the image's settings are unknown (a plain rootfs)
    contents: dict[str, bytes] = field(default_factory=dict)  # kept files, by path without a leading /
    paths: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str] | None:
        if self.config is None:
            return None
        out = {}
        for item in self.config.get("Env") or []:
            name, _, value = str(item).partition("=")
            out[name] = value
        return out

    def user(self) -> str | None:
        return None if self.config is None else str(self.config.get("User") or "")

    def text(self, path: str) -> str | None:
        data = self.contents.get(path)
        return None if data is None else data.decode("utf-8", "replace")

    def dist_metadata(self) -> Iterator[tuple[str, str]]:
        """(path, METADATA text) of every installed distribution."""
        for path, data in sorted(self.contents.items()):
            if path.endswith(".dist-info/METADATA"):
                yield path, data.decode("utf-8", "replace")


def _normal(name: str) -> str:
    """``./etc/passwd``, ``/etc/passwd`` -> ``etc/passwd``; the root itself -> ``""``."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path in ("", ".") else path


def _kept(path: str) -> bool:
    return path in KEPT_FILES or path.endswith(".dist-info/METADATA")


def open_image(path: str | Path) -> ImageFiles:
    """The image at ``path`` (module docstring); :class:`ImageLayoutError` if it is none of those."""
    where = Path(path)
    if where.is_dir():
        if (where / "index.json").is_file() and (where / "blobs").is_dir():
            return _oci(_DirSource(where), str(where))
        if (where / "config.json").is_file() and (where / "rootfs").is_dir():
            return _bundle(where)
        if (where / "etc").is_dir() or (where / "usr").is_dir():
            return _rootfs(where, str(where), "rootfs", None)
        raise ImageLayoutError(f"{where}: not a root filesystem, an OCI bundle or an OCI image layout")
    if not where.is_file():
        raise ImageLayoutError(f"{where}: no such file or directory")
    try:
        archive = tarfile.open(where, "r:*")  # noqa: SIM115 - closed below
    except tarfile.TarError as exc:
        raise ImageLayoutError(f"{where}: not a tar archive ({exc})") from exc
    with archive:
        source = _TarSource(archive)
        if source.exists("manifest.json"):
            return _docker_archive(source, str(where))
        if source.exists("index.json"):
            return _oci(source, str(where))
    raise ImageLayoutError(f"{where}: a tar without manifest.json (docker-archive) or index.json (OCI layout)")


def _rootfs(root: Path, source: str, kind: str, config: dict[str, Any] | None) -> ImageFiles:
    image = ImageFiles(source, kind, config)
    for directory, subdirs, files in os.walk(root, onerror=None, followlinks=False):
        rel_dir = Path(directory).relative_to(root).as_posix()
        if rel_dir in ("proc", "sys", "dev"):
            subdirs.clear()
            continue
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if _kept(rel):
                try:
                    image.contents[rel] = (Path(directory) / name).read_bytes()
                except OSError:
                    continue
                image.paths.add(rel)
    return image


def _bundle(where: Path) -> ImageFiles:
    runtime = json.loads((where / "config.json").read_text())
    process = runtime.get("process") or {}
    user = process.get("user") or {}
    config = {"Env": list(process.get("env") or []), "User": f"{user.get('uid', '')}:{user.get('gid', '')}"}
    return _rootfs(where / "rootfs", str(where), "bundle", config)


class _DirSource:
    def __init__(self, root: Path) -> None:
        self.root = root

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def open(self, name: str) -> IO[bytes]:
        return (self.root / name).open("rb")


class _TarSource:
    def __init__(self, archive: tarfile.TarFile) -> None:
        self.archive = archive
        self.members = {_normal(m.name): m for m in archive.getmembers() if m.isfile()}

    def exists(self, name: str) -> bool:
        return _normal(name) in self.members

    def read(self, name: str) -> bytes:
        return self.open(name).read()

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(_normal(name))
        handle = self.archive.extractfile(member) if member is not None else None
        if handle is None:
            raise ImageLayoutError(f"{name} is missing from the archive")
        return handle


def _blob(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _oci(source: _DirSource | _TarSource, where: str) -> ImageFiles:
    document = json.loads(source.read("index.json"))
    for _ in range(4):  # an index may point at another index (multi-platform images)
        manifests = document.get("manifests")
        if not manifests:
            break
        chosen = next(
            (m for m in manifests if (m.get("platform") or {}).get("architecture") in (None, "amd64")), manifests[0]
        )
        document = json.loads(source.read(_blob(chosen["digest"])))
    if "layers" not in document or "config" not in document:
        raise ImageLayoutError(f"{where}: the OCI index leads to no image manifest")
    config = json.loads(source.read(_blob(document["config"]["digest"]))).get("config") or {}
    layers = [_blob(layer["digest"]) for layer in document["layers"]]
    return _apply_layers(source, layers, where, "oci", config)


def _docker_archive(source: _TarSource, where: str) -> ImageFiles:
    manifest = json.loads(source.read("manifest.json"))
    if not isinstance(manifest, list) or not manifest:
        raise ImageLayoutError(f"{where}: manifest.json lists no image")
    entry = manifest[0]
    config = json.loads(source.read(entry["Config"])).get("config") or {}
    return _apply_layers(source, list(entry["Layers"]), where, "docker-archive", config)


def _layer_tar(handle: IO[bytes]) -> tarfile.TarFile:
    head = handle.read(2)
    rest = handle.read()
    data = head + rest
    if head == b"\x1f\x8b":
        data = gzip.decompress(data)
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:")


def _apply_layers(
    source: _DirSource | _TarSource, layers: list[str], where: str, kind: str, config: dict[str, Any]
) -> ImageFiles:
    image = ImageFiles(where, kind, config)
    for layer in layers:
        with source.open(layer) as handle, _layer_tar(handle) as tar:
            for member in tar:
                path = _normal(member.name)
                if not path:
                    continue
                parent, base = posixpath.split(path)
                if base == OPAQUE:
                    _remove_under(image, parent, keep_dir=True)
                    continue
                if base.startswith(WHITEOUT):
                    _remove_under(image, posixpath.join(parent, base[len(WHITEOUT) :]), keep_dir=False)
                    continue
                if member.isdir():
                    continue
                image.paths.add(path)
                if _kept(path) and member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        image.contents[path] = extracted.read()
                else:
                    image.contents.pop(path, None)
    return image


def _remove_under(image: ImageFiles, path: str, *, keep_dir: bool) -> None:
    prefix = path + "/" if path else ""
    doomed = [p for p in image.paths if p.startswith(prefix) or (not keep_dir and p == path)]
    for p in doomed:
        image.paths.discard(p)
        image.contents.pop(p, None)
