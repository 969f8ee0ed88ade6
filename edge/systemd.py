"""systemd's notify protocol, spoken directly (no extra package): READY, WATCHDOG, STOPPING.

Both long-running services use it: the edge agent (edge/deploy/gridsentinel-edge.service) and
the hub (hub/deploy/gridsentinel-hub.service), each ``Type=notify`` with a watchdog.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)


def sd_notify(message: str) -> bool:
    """Send one sd_notify line to ``$NOTIFY_SOCKET``; False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        logger.warning("sd_notify %s failed: %s", message, exc)
        return False
    return True


def watchdog_seconds() -> float | None:
    """The systemd watchdog period (``$WATCHDOG_USEC``) in seconds, if one is set for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000
    except ValueError:
        return None
