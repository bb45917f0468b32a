"""Run the fake API server as its own process.

    python -m tests.fakekube --port 0 --nodes 3 --node-cpu 4 --node-memory 16Gi

prints exactly one line ``FAKEKUBE_URL=http://127.0.0.1:PORT`` on stdout once it is accepting connections, then
serves until SIGTERM/SIGINT.  Configure it further through the ``/_fake/`` control API (see :mod:`.control`).
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
from .server import FakeKubeServer


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
    p.add_argument("--schedule-delay", type=float, default=defaults.schedule_delay)
    p.add_argument("--start-delay", type=float, default=defaults.start_delay)
    p.add_argument("--run-seconds", type=float, default=defaults.run_seconds)
    p.add_argument("--deletion-delay", type=float, default=defaults.deletion_delay)
    p.add_argument("--bookmark-interval", type=float, default=defaults.bookmark_interval)
    p.add_argument("--history-size", type=int, default=defaults.history_size)
    p.add_argument("--no-events", action="store_true", help="do not write Event objects")
    p.add_argument("--no-metrics", action="store_true", help="serve no metrics.k8s.io API")
    p.add_argument("--priorities", default="{}", help="JSON map priorityClassName -> priority")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_server(args: argparse.Namespace) -> FakeKubeServer:
    if args.nodes_json:
        nodes = [NodeSpec.from_dict(n) for n in json.loads(args.nodes_json)]
    else:
        nodes = [
            NodeSpec(f"node-{i}", cpu=args.node_cpu, memory=args.node_memory, pods=args.node_pods, gpus=args.node_gpus)
            for i in range(1, args.nodes + 1)
        ]
    return FakeKubeServer(
        nodes,
        host=args.host,
        port=args.port,
        priorities=json.loads(args.priorities),
        seed=args.seed,
        schedule_delay=args.schedule_delay,
        start_delay=args.start_delay,
        run_seconds=args.run_seconds,
        deletion_delay=args.deletion_delay,
        bookmark_interval=args.bookmark_interval,
        history_size=args.history_size,
        emit_events=not args.no_events,
        metrics_enabled=not args.no_metrics,
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
