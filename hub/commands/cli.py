"""``gridsentinel hub devices command DEVICE OP [KEY=VALUE ...]``: send a command through the hub's API.

It talks to a running hub over HTTP with an API token (``--token`` or
``$GRIDSENTINEL_TOKEN``), like the operator page, so the hub checks the same rights
and writes the same audit records; with ``--wait`` it polls until the command is
acked, failed, expired or timed out and exits 0 only for ``acked``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Final

from edge.wire import KIND_OPS, CommandOp

TOKEN_ENV: Final = "GRIDSENTINEL_TOKEN"
URL_ENV: Final = "GRIDSENTINEL_HUB_URL"
DEFAULT_URL: Final = "http://127.0.0.1:8080"
FINAL_STATES: Final = frozenset({"acked", "failed", "expired", "timed_out"})

_EPILOG = "ops by device kind:\n" + "\n".join(
    f"  {kind.value:<8} {', '.join(op.value for op in ops)}" for kind, ops in KIND_OPS.items()
)
_EPILOG += (
    "\n\nexamples:\n"
    "  gridsentinel hub devices command kiosk-07 ping --wait\n"
    "  gridsentinel hub devices command kiosk-07 set_interval seconds=30 --ttl 120\n"
    "  gridsentinel hub devices command cam-03 snapshot --idempotency-key incident-812\n"
    "\nexit status: 0 sent (or acked with --wait), 1 refused or not acked, 2 bad input or no hub."
)


def configure(sub: Any) -> None:
    """Add ``command`` to the ``hub devices`` subcommands."""
    p = sub.add_parser(
        "command",
        help="send a command (ping, get_config, snapshot, ...) to a device through the hub's API",
        description="Send a command to a device through the running hub's API (QoS 1 on its cmd topic) and "
        "print the command as stored; --wait follows it to acked / failed / expired / timed_out.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("device_id", metavar="DEVICE", help="device id, e.g. kiosk-07")
    p.add_argument("op", metavar="OP", choices=[op.value for op in CommandOp], help="the op (see below)")
    p.add_argument("args", metavar="KEY=VALUE", nargs="*", help="op arguments; values are JSON (30, true) or text")
    p.add_argument("--ttl", type=float, default=60.0, help="seconds the device may still run it after receipt (60)")
    p.add_argument("--wait", action="store_true", help="wait for the ack or the timeout and print the final state")
    p.add_argument("--idempotency-key", help="sending again with the same key returns the same command")
    p.add_argument("--url", default=os.environ.get(URL_ENV, DEFAULT_URL), help=f"hub URL (${URL_ENV}, {DEFAULT_URL})")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"API token (${TOKEN_ENV})")
    p.set_defaults(func=command_command)


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict; a value that parses as JSON is taken as such, else as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def command_command(args: argparse.Namespace) -> int:
    """Send one command; print it as JSON."""
    import httpx

    name = "gridsentinel hub devices command"
    if not args.token:
        print(f"{name}: no API token (--token or ${TOKEN_ENV}; 'gridsentinel hub token issue')", file=sys.stderr)
        return 2
    try:
        body = {"op": args.op, "args": parse_args(args.args), "ttl_s": args.ttl}
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.token}"}
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    url = f"/api/v1/devices/{args.device_id}/commands"
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=10) as client:
            resp = client.post(url, json=body)
            if resp.status_code not in (200, 201):
                print(f"{name}: HTTP {resp.status_code}: {resp.text}", file=sys.stderr)
                return 1
            view: dict[str, Any] = resp.json()
            deadline = time.monotonic() + args.ttl + 60
            while args.wait and view["state"] not in FINAL_STATES and time.monotonic() < deadline:
                time.sleep(0.25)
                view = client.get(f"{url}/{view['id']}").json()
    except httpx.HTTPError as exc:
        print(f"{name}: cannot reach the hub at {args.url}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(view, indent=2, ensure_ascii=False))
    return 0 if not args.wait or view["state"] == "acked" else 1
