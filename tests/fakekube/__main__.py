"""Run the fake API server as its own process.

    python -m tests.fakekube --port 0 --nodes 3 --node-cpu 4 --node-memory 16Gi

prints exactly one line ``FAKEKUBE_URL=http://127.0.0.1:PORT`` on stdout once it is accepting connections, then
serves until SIGTERM/SIGINT (which also kills every process the process mode started).  Configure it further
through the ``/_fake/`` control API (see :mod:`.control`).

``--strict`` applies :meth:`ClusterConfig.strict`'s preset; knob flags given explicitly override it.
``--process-mode --allow-exec /path/to/python --env PATH=... --env HOME=...`` runs each pod's container command as a
local process (see :mod:`.processes`).
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
from types import FrameType

from .config import ClusterConfig
from .nodes import NodeSpec
from .processes import ProcessMode
from .server import FakeKubeServer

_KNOBS: list[tuple[str, type, str]] = [
    ("schedule_delay", float, "created -> bound, seconds"),
    ("start_delay", float, "bound -> Running, seconds"),
    ("run_seconds", float, "Running -> Succeeded, seconds"),
    ("deletion_delay", float, "graceful deletion -> removal, seconds"),
    ("bookmark_interval", float, "seconds between BOOKMARKs"),
    ("bookmark_shape", str, "short | apiserver"),
    ("history_size", int, "watch events kept per kind"),
    ("history_seconds", float, "watch events expire after this long (0: never)"),
    ("quota_release_delay", float, "quota usage released this long after a pod ends (0: at once, inf: on resync)"),
    ("quota_conflict_every", int, "every Nth quota-charging create answers 409 (0: never)"),
    ("overload_concurrency", int, "overloaded server: requests executing at once (0: no concurrency budget)"),
    ("overload_queue", int, "overloaded server: requests waiting for a seat before 429s"),
    ("overload_service_time", float, "overloaded server: seconds a request holds its seat, at least"),
    ("overload_rate", float, "overloaded server: requests per second (0: no rate budget)"),
    ("overload_burst", int, "overloaded server: burst of the rate budget"),
    ("overload_retry_after", int, "overloaded server: Retry-After of its 429s"),
    ("overload_verbs", str, "overloaded server: mutating | all"),
    ("rbac_sync_delay", float, "after POST /_fake/restart, seconds of RBAC 403s (0: never)"),
]
_SWITCHES = [
    ("bookmark_before_timeout", "also send a BOOKMARK 2 s before a watch times out"),
    ("server_defaults", "add the tolerations, token volume... a real server adds to pods"),
    ("reject_unknown_priority_class", "refuse pods naming an unknown PriorityClass (403)"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = ClusterConfig()
    p = argparse.ArgumentParser(prog="python -m tests.fakekube", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="a loopback address")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--nodes", type=int, default=0, help="number of identical nodes (0: one unlimited node)")
    p.add_argument("--node-cpu", default="8")
    p.add_argument("--node-memory", default="32Gi")
    p.add_argument("--node-pods", type=int, default=110)
    p.add_argument("--node-gpus", type=int, default=0)
    p.add_argument("--nodes-json", help="JSON list of node specs (overrides --nodes)")
    p.add_argument("--strict", action="store_true", help="every real-server behaviour on (ClusterConfig.strict)")
    for name, kind, text in _KNOBS:
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, type=kind, dest=name, help=f"{text} (default {getattr(defaults, name)})")
    for name, text in _SWITCHES:
        p.add_argument("--" + name.replace("_", "-"), action="store_true", default=None, dest=name, help=text)
    p.add_argument("--no-events", action="store_true", help="do not write Event objects")
    p.add_argument("--no-metrics", action="store_true", help="serve no metrics.k8s.io API")
    p.add_argument("--priorities", default="{}", help="JSON map priorityClassName -> priority")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--process-mode", action="store_true", help="run each pod's container command as a process")
    p.add_argument("--allow-exec", action="append", default=[], metavar="PATH", help="executable pods may run")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="base environment of every process")
    p.add_argument("--process-root", help="directory for the per-pod directories (default: the system temp dir)")
    args = p.parse_args(argv)
    if args.process_mode and not args.allow_exec:
        p.error("--process-mode needs at least one --allow-exec")
    if any(not path.startswith("/") for path in args.allow_exec):
        p.error("--allow-exec takes absolute paths")
    if any("=" not in item for item in args.env):
        p.error("--env takes K=V")
    return args


def build_server(args: argparse.Namespace) -> FakeKubeServer:
    if args.nodes_json:
        nodes = [NodeSpec.from_dict(n) for n in json.loads(args.nodes_json)]
    else:
        nodes = [
            NodeSpec(f"node-{i}", cpu=args.node_cpu, memory=args.node_memory, pods=args.node_pods, gpus=args.node_gpus)
            for i in range(1, args.nodes + 1)
        ]
    knobs = {name: getattr(args, name) for name, _, _ in _KNOBS}
    knobs.update({name: getattr(args, name) for name, _ in _SWITCHES})
    overrides = {name: value for name, value in knobs.items() if value is not None}
    if args.no_events:
        overrides["emit_events"] = False
    if args.no_metrics:
        overrides["metrics_enabled"] = False
    process_mode = None
    if args.process_mode:
        env = dict(item.split("=", 1) for item in args.env)
        process_mode = ProcessMode(allowed=args.allow_exec, base_env=env, root=args.process_root)
    return FakeKubeServer(
        nodes,
        host=args.host,
        port=args.port,
        priorities=json.loads(args.priorities),
        seed=args.seed,
        strict=args.strict,
        process_mode=process_mode,
        **overrides,
    )


def main(argv: list[str] | None = None) -> int:
    sys.setswitchinterval(0.001)
    # The fake keeps every pod and a long event history: with the default thresholds, full
    # collections of that heap pause the server for 100+ ms, which a benchmark would misread as
    # scheduler latency.  Collect young objects as usual, the old generation rarely.
    gc.set_threshold(50_000, 50, 1000)
    server = build_server(parse_args(argv)).start()
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stdout.write(f"FAKEKUBE_URL={server.url}\n")
    sys.stdout.flush()
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
