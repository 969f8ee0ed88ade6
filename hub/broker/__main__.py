"""``python -m hub.broker``: run the embedded broker in the foreground (manual tests, benchmarks)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from hub.broker.server import DEFAULT_MAX_PACKET_BYTES, EmbeddedBroker


async def _serve(args: argparse.Namespace) -> None:
    broker = EmbeddedBroker(args.host, args.port, max_packet_bytes=args.max_packet_bytes)
    await broker.start()
    print(f"listening on {broker.host}:{broker.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await broker.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m hub.broker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--max-packet-bytes", type=int, default=DEFAULT_MAX_PACKET_BYTES)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
