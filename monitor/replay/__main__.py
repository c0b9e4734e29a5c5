"""Serve recorded Reddit traffic interactively: ``python -m monitor.replay DIR [DIR...]``."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from monitor.replay.server import FAULT_KINDS, FaultPlan, ReplayServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.replay",
        description="Answer Reddit API requests from vcrpy cassettes on 127.0.0.1.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="directories of *.json cassettes")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free one)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per request")
    parser.add_argument("--seed", type=int, default=0, help="seed for the fault choices")
    parser.add_argument(
        "--fault-kinds",
        default=",".join(FAULT_KINDS),
        help=f"comma-separated subset of {','.join(FAULT_KINDS)}",
    )
    return parser


def _fault_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> FaultPlan | None:
    if args.fault_rate <= 0:
        return None
    try:
        return FaultPlan(seed=args.seed, rate=args.fault_rate, kinds=tuple(args.fault_kinds.split(",")))
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    faults = _fault_plan(parser, args)
    with ReplayServer(args.dirs, faults, port=args.port) as server:
        print(f"{server.url}  ({len(server.library.cassettes)} cassettes; Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        print(f"requests: {server.request_count}, misses: {len(server.misses)}, faults: {server.faults_injected}")


if __name__ == "__main__":
    main()
