"""Measure the fake server's throughput the way a benchmark would use it: server in its own process, the official
client with ``_preload_content=False`` on a thread pool in this one.

    python -m tests.fakekube.loadcheck --pods 2000 --threads 8

Prints creates/s, pod GETs/s, the time until every pod Succeeded, and CPU seconds used by each side.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client

from .manifests import pod_manifest

REPO = Path(__file__).resolve().parents[2]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakekube", "--port", "0"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        if not ready:
            raise RuntimeError("fake server did not start")
        url = proc.stdout.readline().strip().split("=", 1)[1]
        cfg = client.Configuration()
        cfg.host = url
        cfg.connection_pool_maxsize = args.threads * 2
        api = client.ApiClient(cfg)
        core = client.CoreV1Api(api)

        def create(i: int) -> None:
            body = pod_manifest(f"p-{i}", requests={"cpu": "10m", "memory": "16Mi"})
            response = core.create_namespaced_pod("load", body, _preload_content=False)  # type: ignore[arg-type]
            assert response.status == 201

        def get(i: int) -> None:
            assert core.read_namespaced_pod(f"p-{i % args.pods}", "load", _preload_content=False).status == 200

        with ThreadPoolExecutor(args.threads) as pool:
            for label, fn, count in (("pod creates", create, args.pods), ("pod GETs", get, args.pods * 2)):
                server_cpu, client_cpu, started = _cpu_seconds(proc.pid), time.process_time(), time.perf_counter()
                list(pool.map(fn, range(count)))
                elapsed = time.perf_counter() - started
                print(
                    f"{label}: {count / elapsed:.0f}/s ({count} in {elapsed:.2f}s; server CPU "
                    f"{_cpu_seconds(proc.pid) - server_cpu:.2f}s, client CPU {time.process_time() - client_cpu:.2f}s)"
                )
        started = time.perf_counter()
        while True:
            response = api.call_api(*api.param_serialize("GET", "/_fake/stats"))
            stats = json.loads(response.read())
            if stats["phases"].get("Succeeded", 0) >= args.pods:
                break
            time.sleep(0.05)
        print(f"all {args.pods} pods Succeeded {time.perf_counter() - started:.2f}s after the GETs finished")
        print(f"duplicates: {len(stats['duplicate_creates'])}, internal errors: {stats['errors']}")
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
