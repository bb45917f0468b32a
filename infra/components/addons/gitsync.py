"""git-sync: the dag-processor's sidecar checks the DAG repository out into the DAGs claim.

This is the chart's ``dags.gitSync`` with ``dags.persistence``: one ``git-sync`` container (v4)
clones ``gitSyncRepo`` at ``gitSyncRef`` into the claim every ``gitSyncPeriodSeconds`` and switches
the ``repo`` symlink atomically (``--root /git --link repo``).  ``[core] dags_folder`` becomes
``/opt/airflow/dags/repo[/<gitSyncSubPath>]`` (:func:`dags_folder`), and every reader - the
dag-processor's main container, the triggerer and every task pod - keeps mounting the claim
read-only at ``/opt/airflow/dags``.  Why not an init container in each task pod, as the chart does
without persistence: task pods would then need the git credentials, and they get no Secret at all.

The sidecar alone mounts the claim writable (a second volume of the same claim, ``dags-rw``), and
alone reads the credentials: ``GITSYNC_USERNAME``/``GITSYNC_PASSWORD`` from ``gitSyncCredentialsSecret``
(HTTPS), or ``gitSshKey`` and ``known_hosts`` from ``gitSyncSshKeySecret`` (SSH, host keys
checked).  It runs as the pod's user with the platform's hardening (read-only root, ``HOME`` on its
own emptyDir), and its egress is ``gitSyncCidrs`` on TCP 443 and 22 (a NetworkPolicy of the
dag-processor).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from airflow_k8s.infra.components.airflowcfg import DAGS_FOLDER
from airflow_k8s.infra.components.names import GIT_SYNC
from airflow_k8s.infra.config.addons import GitSyncSpec

GIT_ROOT = "/git"
LINK = "repo"
SSH_DIR = "/etc/git-secret"
GIT_PORTS = (443, 22)
HTTP_PORT = 2020


def dags_folder(git: GitSyncSpec) -> str:
    """``[core] dags_folder``: the claim's mount, or git-sync's checkout link inside it."""
    if not git.enabled:
        return DAGS_FOLDER
    return "/".join(p for p in (DAGS_FOLDER, LINK, git.sub_path) if p)


def sidecar(git: GitSyncSpec) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/", "port": "git-sync"}, "periodSeconds": 30, "timeoutSeconds": 5}
    args = [
        f"--repo={git.repo}",
        f"--ref={git.ref}",
        f"--root={GIT_ROOT}",
        f"--link={LINK}",
        f"--period={git.period_seconds}s",
        "--max-failures=-1",  # a git host outage must not crash-loop the dag-processor's pod
        f"--http-bind=:{HTTP_PORT}",  # "/" answers once a sync succeeded: its probes
    ]
    container: dict[str, Any] = {
        "name": GIT_SYNC,
        "image": git.image,
        "imagePullPolicy": "Always",  # a tag: re-check it (and the pull credentials) on every start
        "args": args,
        "ports": [{"name": "git-sync", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "failureThreshold": 10},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "env": [{"name": "HOME", "value": "/tmp"}],  # noqa: S108 - its own emptyDir
        "resources": git.resources.to_k8s(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "dags-rw", "mountPath": GIT_ROOT},
            {"name": "git-tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
        ],
    }
    if git.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": git.credentials_secret}}]
    if git.ssh_key_secret:
        args += [f"--ssh-key-file={SSH_DIR}/gitSshKey", f"--ssh-known-hosts-file={SSH_DIR}/known_hosts"]
        container["volumeMounts"].append({"name": "git-secret", "mountPath": SSH_DIR, "readOnly": True})
    return container


def with_git_sync(spec: Mapping[str, Any], git: GitSyncSpec) -> dict[str, Any]:
    """The dag-processor's pod spec with the sidecar and its volumes (module docstring)."""
    out = copy.deepcopy(dict(spec))
    (dags,) = [v for v in out["volumes"] if v["name"] == "dags"]
    claim = dags["persistentVolumeClaim"]["claimName"]
    out["volumes"] += [
        {"name": "dags-rw", "persistentVolumeClaim": {"claimName": claim}},
        {"name": "git-tmp", "emptyDir": {"sizeLimit": "256Mi"}},
    ]
    if git.ssh_key_secret:
        # owner root, group 0 (the pod's group): readable by the pod's user, by no one else
        secret = {"secretName": git.ssh_key_secret, "defaultMode": 0o440}
        out["volumes"].append({"name": "git-secret", "secret": secret})
    out["containers"].append(sidecar(git))
    return out
