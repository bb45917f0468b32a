"""The image check offline: fake images (root filesystems, an OCI layout, a docker-archive) in, findings out."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from airflow_k8s.executor.imagecheck import offline
from airflow_k8s.executor.imagecheck.layout import ImageLayoutError, open_image
from airflow_k8s.infra.render.main import main

PASSWD = "root:x:0:0:root:/root:/bin/bash\nairflow:x:50000:0:airflow:/home/airflow:/bin/bash\n"
SITE = "usr/local/lib/python3.11/site-packages"
WANT = offline.Expectations("scheduler", 50000, 0, "/opt/airflow", "/opt/airflow/airflow.cfg", "3.3.2", "0.1.0")


def metadata(name: str, version: str, *requires: str) -> str:
    return (
        "\n".join(
            [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}", *(f"Requires-Dist: {r}" for r in requires)]
        )
        + "\n"
    )


def official_files(*, passwd: str = PASSWD, executor: bool = True, sdk: str = "1.3.2") -> dict[str, str]:
    """What the checks read of an apache/airflow 3.3.2 image with this package installed."""
    files = {
        "etc/passwd": passwd,
        f"{SITE}/apache_airflow-3.3.2.dist-info/METADATA": metadata(
            "apache-airflow", "3.3.2", "apache-airflow-core==3.3.2", "apache-airflow-task-sdk==1.3.2"
        ),
        f"{SITE}/apache_airflow_task_sdk-{sdk}.dist-info/METADATA": metadata("apache-airflow-task-sdk", sdk),
    }
    if executor:
        files[f"{SITE}/airflow_k8s_platform-0.1.0.dist-info/METADATA"] = metadata("airflow-k8s-platform", "0.1.0")
    return files


def rootfs(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def bundle(where: Path, files: dict[str, str], env: list[str]) -> Path:
    """What ``umoci unpack`` leaves: config.json (runtime spec) + rootfs/."""
    rootfs(where / "rootfs", files)
    runtime = {"process": {"env": env, "user": {"uid": 50000, "gid": 0}}}
    (where / "config.json").write_text(json.dumps(runtime))
    return where


def problems(path: Path, want: offline.Expectations = WANT) -> list[str]:
    return offline.check(open_image(path), want).problems


def test_an_image_like_the_official_one_with_this_package_passes(tmp_path):
    image = bundle(tmp_path, official_files(), ["PATH=/usr/bin", "AIRFLOW_HOME=/opt/airflow"])
    report = offline.check(open_image(image), WANT)
    assert report.problems == []
    skipped = [message for status, check, message in report.lines if status == offline.SKIP]
    assert skipped == list(offline.NOT_CHECKED)  # what only running the image shows is said, not hidden


def test_an_image_without_a_passwd_entry_for_the_pods_uid_is_stopped_naming_the_uid(tmp_path):
    image = rootfs(tmp_path, official_files(passwd="root:x:0:0:root:/root:/bin/bash\n"))
    (problem,) = problems(image)
    assert problem.startswith("uid 50000 has no passwd entry in the image")
    assert "getpwuid(): uid not found: 50000" in problem and "useradd --uid 50000 --gid 0 airflow" in problem


def test_an_image_built_with_another_airflow_home_is_stopped_naming_both_paths(tmp_path):
    image = bundle(tmp_path, official_files(), ["AIRFLOW_HOME=/home/airflow/airflow"])
    (problem,) = problems(image)
    assert problem.startswith("the image sets AIRFLOW_HOME=/home/airflow/airflow, but the platform mounts")
    assert "build the image with AIRFLOW_HOME=/opt/airflow" in problem


def test_a_scheduler_image_without_this_package_is_stopped_but_a_worker_image_needs_none(tmp_path):
    image = rootfs(tmp_path, official_files(executor=False))
    (problem,) = problems(image)
    assert problem.startswith("this platform's executor is not in the image (no airflow-k8s-platform")
    worker = offline.Expectations("worker", 50000, 0, "/opt/airflow", "/opt/airflow/airflow.cfg", "3.3.2")
    assert problems(image, worker) == []


def test_wrong_versions_of_airflow_the_task_sdk_and_the_executor_are_named(tmp_path):
    image = rootfs(tmp_path, official_files(sdk="1.3.1"))
    want = offline.Expectations("scheduler", 50000, 0, "/opt/airflow", "/opt/airflow/airflow.cfg", "3.4.0", "0.2.0")
    assert problems(image, want) == [
        "Airflow is 3.3.2 in the image, the platform expects 3.4.0 (airflowVersion)",
        "the Task SDK is 1.3.1, this Airflow requires apache-airflow-task-sdk==1.3.2",
        "airflow-k8s-platform is 0.1.0 in the image, the platform expects 0.2.0 (this checkout)",
    ]


def test_a_plain_rootfs_says_its_environment_was_not_checked(tmp_path):
    report = offline.check(open_image(rootfs(tmp_path, official_files())), WANT)
    assert ("skip", "airflow-home", f"a plain root filesystem carries no environment ({tmp_path})") in report.lines


def _layer(files: dict[str, str], *, compress: bool) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue()) if compress else raw.getvalue()


LAYERS = (
    official_files(),
    # a later layer deletes the airflow user (a whiteout of /etc/passwd) and adds another passwd
    {"etc/.wh.passwd": "", "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"},
    # and removes the executor's distribution (an opaque directory whiteout would too)
    {f"{SITE}/.wh.airflow_k8s_platform-0.1.0.dist-info": ""},
)


def oci_layout(where: Path, env: list[str]) -> Path:
    blobs = where / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = blob(json.dumps({"config": {"Env": env, "User": "50000"}}).encode())
    layers = [blob(_layer(files, compress=True)) for files in LAYERS]
    manifest = blob(json.dumps({"schemaVersion": 2, "config": config, "layers": layers}).encode())
    (where / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (where / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    return where


def test_an_oci_layout_is_read_layer_by_layer_with_whiteouts(tmp_path):
    image = open_image(oci_layout(tmp_path / "oci", ["AIRFLOW_HOME=/opt/airflow"]))
    assert image.kind == "oci" and image.env() == {"AIRFLOW_HOME": "/opt/airflow"}
    found = offline.check(image, WANT).problems
    assert [p.split(" ")[0:3] for p in found] == [["uid", "50000", "has"], ["this", "platform's", "executor"]]


def test_a_docker_archive_is_read_like_docker_save_writes_it(tmp_path):
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("config.json", json.dumps({"config": {"Env": ["AIRFLOW_HOME=/srv/airflow"]}}).encode())
        names = []
        for index, files in enumerate(LAYERS[:1]):
            names.append(f"layer{index}/layer.tar")
            add(names[-1], _layer(files, compress=False))
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["x:1"], "Layers": names}]).encode())
    image = open_image(archive)
    assert image.kind == "docker-archive"
    (problem,) = offline.check(image, WANT).problems
    assert problem.startswith("the image sets AIRFLOW_HOME=/srv/airflow")


def test_anything_else_is_refused_naming_the_path(tmp_path):
    with pytest.raises(ImageLayoutError, match="not a root filesystem, an OCI bundle or an OCI image layout"):
        open_image(tmp_path)
    (tmp_path / "x.tar").write_bytes(b"not a tar")
    with pytest.raises(ImageLayoutError, match="not a tar archive"):
        open_image(tmp_path / "x.tar")


def test_the_cli_prints_every_check_and_one_line_naming_the_image_and_exits_1(tmp_path, capsys):
    image = rootfs(tmp_path / "root", official_files(passwd="root:x:0:0::/:/bin/sh\n", executor=False))
    assert main(["check-image", str(image), "--role", "scheduler"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL  user: uid 50000 has no passwd entry")
    assert out[-1].startswith(f"image {image} (scheduler) cannot run the platform's pods: uid 50000 has no passwd")
    assert "this platform's executor is not in the image" in out[-1]
    assert main(["check-image", str(image), "--role", "worker", "--uid", "0"]) == 0
    assert main(["check-image", str(tmp_path / "missing"), "--role", "worker"]) == 2
