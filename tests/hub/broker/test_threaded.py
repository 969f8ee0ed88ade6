"""ThreadedBroker: start on a free port, refuse a busy one, stop cleanly."""

from __future__ import annotations

import socket

import pytest

from hub.broker import BrokerStartError, ThreadedBroker
from simulators.servers import port_open

pytestmark = pytest.mark.integration


def test_port_zero_picks_a_free_port_and_stop_releases_it() -> None:
    broker = ThreadedBroker(port=0)
    with broker:
        assert broker.port > 0
        assert port_open(broker.port)
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
    assert not port_open(broker.port)
    broker.stop()  # a second stop is harmless


def test_busy_port_raises_typed_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        broker = ThreadedBroker(port=busy.getsockname()[1])
        with pytest.raises(BrokerStartError):
            broker.start()
