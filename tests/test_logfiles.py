"""The log groomer: age first, then oldest-first down to a size; regular files only, never through a link."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from airflow_k8s.executor.reports.logfiles import groom

DAY = 86400.0
NOW = 1_700_000_000.0


def write(path: Path, size: int, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))  # random: no sparse or compressed blocks
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


def test_files_older_than_the_retention_are_deleted_and_empty_directories_go(tmp_path: Path) -> None:
    old = write(tmp_path / "dag_id=a" / "run_id=1" / "task.log", 4096, age_days=20)
    fresh = write(tmp_path / "scheduler" / "latest.log", 4096, age_days=1)
    report = groom(tmp_path, max_age_seconds=15 * DAY, max_bytes=10**9, now=NOW)
    assert report.expired == [str(old)] and report.evicted == []
    assert fresh.exists() and not (tmp_path / "dag_id=a").exists() and tmp_path.exists()


def test_over_the_size_the_oldest_files_go_first_until_it_fits(tmp_path: Path) -> None:
    files = [write(tmp_path / f"f{i}.log", 64 * 1024, age_days=5 - i) for i in range(5)]  # f0 oldest
    report = groom(tmp_path, max_age_seconds=15 * DAY, max_bytes=3 * 64 * 1024, now=NOW)
    assert report.evicted == [str(files[0]), str(files[1])]
    assert [f.exists() for f in files] == [False, False, True, True, True]
    assert report.bytes_after <= 3 * 64 * 1024 < report.bytes_before


def test_symlinks_are_neither_followed_nor_deleted(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    precious = write(outside / "precious.log", 4096, age_days=100)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "link.log").symlink_to(precious)
    (logs / "linkdir").symlink_to(outside, target_is_directory=True)
    report = groom(logs, max_age_seconds=DAY, max_bytes=0, now=NOW)
    assert report.expired == report.evicted == [] and precious.exists()
    assert (logs / "link.log").is_symlink()


def test_the_cli_runs_one_pass_and_refuses_a_missing_directory(tmp_path: Path) -> None:
    write(tmp_path / "old.log", 1024, age_days=30)
    cmd = [sys.executable, "-m", "airflow_k8s.executor", "--plain-logs", "groom-logs", "--dir"]
    done = subprocess.run(
        [*cmd, str(tmp_path), "--max-age-days", "7", "--max-bytes", "1000000", "--once"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "old.log").exists() and "1 expired" in done.stderr + done.stdout
    missing = subprocess.run(
        [*cmd, str(tmp_path / "nope"), "--max-age-days", "7", "--max-bytes", "1", "--once"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and "not a directory" in missing.stderr


def test_the_heartbeat_is_never_groomed_and_the_probe_reads_it(tmp_path: Path) -> None:
    import threading

    from airflow_k8s.executor.reports.logfiles import HEARTBEAT, alive, run

    assert not alive(tmp_path, 60)
    stop = threading.Event()
    stop.set()  # one pass
    run(tmp_path, max_age_seconds=DAY, max_bytes=0, every_seconds=1, stop=stop)
    heartbeat = tmp_path / HEARTBEAT
    assert heartbeat.exists() and alive(tmp_path, 60)
    os.utime(heartbeat, (NOW, NOW))
    assert groom(tmp_path, max_age_seconds=1, max_bytes=0, now=NOW + DAY).expired == [] and heartbeat.exists()
    assert not alive(tmp_path, 60, now=NOW + 120)


def test_the_sidecars_probe_command_answers_as_alive_does(tmp_path: Path) -> None:
    from airflow_k8s.executor.reports.logfiles import HEARTBEAT, probe_command

    def probe() -> int:
        return subprocess.run(probe_command(str(tmp_path), 60, python=sys.executable), check=False).returncode

    assert probe() == 1  # no pass yet
    heartbeat = tmp_path / HEARTBEAT
    heartbeat.touch()
    assert probe() == 0
    stale = time.time() - 120
    os.utime(heartbeat, (stale, stale))
    assert probe() == 1
