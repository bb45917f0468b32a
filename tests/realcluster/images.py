"""The platform image, built from the project's own ``Dockerfile`` and imported into the kit's containerd.

Two builds with Debian's buildah (``vfs`` storage, ``chroot`` isolation, no daemon), storage under
``$KC_ROOT/airflow-k8s/buildah`` (kept between runs like the kit's own images; ``make clean-cluster`` removes it):

1. **the tier base** (``images/base.Containerfile``): the kit's ``localhost/kc/airflow:3.3.2`` (exported from
   containerd) laid out like the official ``apache/airflow`` image - user ``airflow`` (UID 50000, group 0),
   ``AIRFLOW_HOME=/opt/airflow``;
2. **the platform image**: the repository's ``Dockerfile``, unchanged, with ``--build-arg AIRFLOW_BASE=<tier
   base>`` - the very file users build with ``docker build`` on ``apache/airflow:3.3.2-python3.11``.  Its
   ``pip install`` reaches PyPI (the one registry this machine may use) for what the base lacks, trusting the
   host's CA bundle (mounted for the build only).

The result is tagged ``localhost/airflow-k8s/airflow:0.1.0-<digest>`` - never ``latest``: the digest is a
sha256 over everything the build reads (both build files, ``.dockerignore``, the copied sources, the kit
image's id), so an unchanged tree reuses the imported image and any change builds a new tag.  Pods use
``imagePullPolicy: IfNotPresent``; nothing is ever pulled from a registry.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.realcluster.kit import KIT_AIRFLOW_IMAGE, ROOT, Kit, KitError

HERE = Path(__file__).resolve().parent
BASE_CONTAINERFILE = HERE / "images" / "base.Containerfile"
REPOSITORY = "localhost/airflow-k8s/airflow"
VERSION = "0.1.0"
TIER_BASE = "localhost/airflow-k8s/airflow-base:3.3.2"
S3_CONTAINERFILE = HERE / "images" / "s3.Containerfile"
S3_REPOSITORY = "localhost/airflow-k8s/s3-log-store"
# what the Dockerfile copies (its COPY lines; tests/realcluster/test_image.py keeps this list true)
COPIED = ("pyproject.toml", "constraints.txt", "README.md", "airflow_k8s", "executor", "pod_templates")


@dataclass
class Buildah:
    """buildah with a private vfs store (no daemon, no registry)."""

    root: Path

    def run(self, *args: str, timeout: float = 3600) -> str:
        argv = [
            "buildah", "--storage-driver", "vfs", "--root", str(self.root / "storage"),
            "--runroot", str(self.root / "run"), *args,
        ]  # fmt: skip
        env = {**os.environ, "BUILDAH_ISOLATION": "chroot", "TMPDIR": str(self.root / "tmp")}
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        if completed.returncode != 0:
            raise KitError(
                f"buildah {' '.join(args[:3])} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
            )
        return completed.stdout

    def has(self, image: str) -> bool:
        try:
            self.run("inspect", "--type", "image", image, timeout=120)
        except KitError:
            return False
        return True


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def source_digest(kit_image_id: str, root: Path = ROOT) -> str:
    """sha256 over every input of the two builds (module docstring), 12 hex digits."""
    digest = hashlib.sha256(kit_image_id.encode())
    inputs = [root / "Dockerfile", root / ".dockerignore", BASE_CONTAINERFILE]
    for name in COPIED:
        inputs += _files(root / name)
    for path in inputs:
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def kit_image_id(kit: Kit, ref: str = KIT_AIRFLOW_IMAGE) -> str:
    for line in kit.ctr("images", "ls").splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == ref:
            return fields[2]  # the manifest digest
    raise KitError(f"{ref} is not in the kit's containerd (run {kit.scripts / 'airflow-image.sh'})")


@dataclass
class PlatformImage:
    ref: str
    built: bool  # False: the tag was already imported (nothing changed since)


def build_platform_image(kit: Kit, *, log: Path | None = None) -> PlatformImage:
    """Build (if needed) and import the platform image; returns its reference."""
    ref = f"{REPOSITORY}:{VERSION}-{source_digest(kit_image_id(kit))}"
    if ref in kit.images():
        return PlatformImage(ref, built=False)
    work = kit.root / "airflow-k8s" / "buildah"
    buildah = Buildah(work)
    out = [_build_base(kit, buildah)]
    out.append(buildah.run(
        "build", "--pull-never", "--layers=false", "-f", str(ROOT / "Dockerfile"), *_pip_trust(work),
        "--build-arg", f"AIRFLOW_BASE={TIER_BASE}", "-t", ref, str(ROOT),
    ))  # fmt: skip
    with tempfile.TemporaryDirectory(dir=kit.root) as tmp:
        archive = Path(tmp) / "platform.tar"
        buildah.run("push", ref, f"docker-archive:{archive}:{ref}", timeout=1800)
        kit.ctr("images", "import", str(archive), timeout=1800)
    stale = [image for image in kit.images() if image.startswith(f"{REPOSITORY}:") and not image.startswith(ref)]
    if stale:  # earlier builds of the tier (and their retags): superseded
        kit.ctr("images", "rm", *stale)
    for image in buildah.run("images", "--format", "{{.Name}}:{{.Tag}}").split():
        if image.startswith(f"{REPOSITORY}:") and image != ref:
            buildah.run("rmi", image)  # the latest stays: the broken images are built on it
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(out))
    return PlatformImage(ref, built=True)


BROKEN = {
    "no-uid": HERE / "images" / "broken-no-uid.Containerfile",
    "airflow-home": HERE / "images" / "broken-airflow-home.Containerfile",
}


def build_broken_images(kit: Kit, platform: str) -> dict[str, str]:
    """Deliberately broken variants (module docstring of test_07): name -> imported reference.

    ``no-uid`` and ``airflow-home`` are the platform image with one thing wrong; ``no-package`` is the tier
    base itself - a good Airflow image without this package, as a scheduler image.
    """
    buildah = Buildah(kit.root / "airflow-k8s" / "buildah")
    tag = platform.rsplit(":", 1)[1]
    refs = {name: f"localhost/airflow-k8s/broken-{name}:{tag}" for name in BROKEN}
    refs["no-package"] = f"localhost/airflow-k8s/broken-no-package:{tag}"
    missing = {name: ref for name, ref in refs.items() if ref not in kit.images()}
    if not missing:
        return refs
    if not buildah.has(platform):
        raise KitError(f"{platform} is not in the build store: rebuild it (make clean-cluster, then the tier)")
    for name, ref in missing.items():
        if name == "no-package":
            buildah.run("tag", TIER_BASE, ref)
        else:
            buildah.run(
                "build", "--pull-never", "--layers=false", "-f", str(BROKEN[name]),
                "--build-arg", f"PLATFORM={platform}", "-t", ref, str(BROKEN[name].parent),
            )  # fmt: skip
        with tempfile.TemporaryDirectory(dir=kit.root) as tmp:
            archive = Path(tmp) / "broken.tar"
            buildah.run("push", ref, f"docker-archive:{archive}:{ref}", timeout=1800)
            kit.ctr("images", "import", str(archive), timeout=1800)
        if name != "no-package":  # that one is only a second name of the tier base
            buildah.run("rmi", ref)
    return refs


def _build_base(kit: Kit, buildah: Buildah) -> str:
    """The tier base (module docstring, 1.), from the kit's image exported from containerd."""
    if not buildah.has(KIT_AIRFLOW_IMAGE):
        with tempfile.TemporaryDirectory(dir=kit.root) as tmp:
            archive = Path(tmp) / "kit-airflow.tar"
            kit.ctr("images", "export", str(archive), KIT_AIRFLOW_IMAGE, timeout=1200)
            pulled = buildah.run("pull", "--quiet", f"oci-archive:{archive}", timeout=1800).split()[-1]
            buildah.run("tag", pulled, KIT_AIRFLOW_IMAGE)  # a ctr export carries no name buildah keeps
    return buildah.run(
        "build", "--pull-never", "--layers=false", "-f", str(BASE_CONTAINERFILE), *_pip_trust(buildah.root),
        "--build-arg", f"KIT_AIRFLOW={KIT_AIRFLOW_IMAGE}", "-t", TIER_BASE, str(BASE_CONTAINERFILE.parent),
    )  # fmt: skip


def build_s3_image(kit: Kit) -> str:
    """The tier's S3-compatible log store (``images/s3.Containerfile``), on the tier base; built once."""
    digest = hashlib.sha256(S3_CONTAINERFILE.read_bytes() + kit_image_id(kit).encode()).hexdigest()[:12]
    ref = f"{S3_REPOSITORY}:{digest}"
    if ref in kit.images():
        return ref
    buildah = Buildah(kit.root / "airflow-k8s" / "buildah")
    if not buildah.has(TIER_BASE):
        _build_base(kit, buildah)
    buildah.run(
        "build", "--pull-never", "--layers=false", "-f", str(S3_CONTAINERFILE), *_pip_trust(buildah.root),
        "--build-arg", f"BASE={TIER_BASE}", "-t", ref, str(S3_CONTAINERFILE.parent),
    )  # fmt: skip
    with tempfile.TemporaryDirectory(dir=kit.root) as tmp:
        archive = Path(tmp) / "s3.tar"
        buildah.run("push", ref, f"docker-archive:{archive}:{ref}", timeout=1800)
        kit.ctr("images", "import", str(archive), timeout=1800)
    buildah.run("rmi", ref)
    return ref


def _pip_trust(work: Path) -> list[str]:
    """Volumes that let the build's pip trust what this host trusts (a TLS-inspecting proxy's CA, if any).

    Only for the build's RUN steps (``buildah build -v``): nothing lands in the image.
    """
    bundle = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        return []
    conf = work / "pip.conf"
    conf.write_text("[global]\ncert = /run/kc-host-ca.crt\ndefault-timeout = 180\n")
    return ["-v", f"{bundle}:/run/kc-host-ca.crt:ro", "-v", f"{conf}:/etc/pip.conf:ro"]


def retag(kit: Kit, ref: str, new_ref: str) -> str:
    """``new_ref`` naming the same content as ``ref`` in containerd (an image-tag update, nothing rebuilt)."""
    if new_ref not in kit.images():
        kit.ctr("images", "tag", ref, new_ref)
    return new_ref
