"""The one place servers are launched: tests, benches and scenarios all start them from here.

Each server runs on free loopback port(s) in a caller-owned work dir and is ready once it serves:

- :mod:`~simulators.servers.base`: :func:`free_port`, :func:`port_open`, :func:`http_ok`, :func:`wait_until`,
  :func:`find_binary`, :class:`ServerProcess` (start, stop, kill, restart) and the errors;
- :mod:`~simulators.servers.brokers`: :class:`Mosquitto` (no-drop limits, persistence, ACLs via
  ``extra_conf``, reload) and the hub's embedded broker in this process or in a child;
- :mod:`~simulators.servers.influx`: :class:`Influxd` (1.x) and :class:`VictoriaMetrics`;
- :mod:`~simulators.servers.postgres`: :class:`Postgres`;
- :mod:`~simulators.servers.hubproc`: :class:`HubProcess`, the hub in a child process.

The product (``edge``, ``hub``) never imports this package.
"""

from simulators.servers.base import (
    MissingBinary,
    ServerError,
    ServerProcess,
    find_binary,
    free_port,
    http_ok,
    port_open,
    require,
    wait_until,
)
from simulators.servers.brokers import (
    NO_DROP_MOSQUITTO_CONF,
    UNLIMITED_MOSQUITTO_CONF,
    EmbeddedBroker,
    EmbeddedBrokerProcess,
    Mosquitto,
)
from simulators.servers.hubproc import HubProcess
from simulators.servers.influx import INFLUX_DB, Influxd, VictoriaMetrics, influxd_conf, vm_export
from simulators.servers.postgres import Postgres

__all__ = [
    "INFLUX_DB",
    "NO_DROP_MOSQUITTO_CONF",
    "UNLIMITED_MOSQUITTO_CONF",
    "EmbeddedBroker",
    "EmbeddedBrokerProcess",
    "HubProcess",
    "Influxd",
    "MissingBinary",
    "Mosquitto",
    "Postgres",
    "ServerError",
    "ServerProcess",
    "VictoriaMetrics",
    "find_binary",
    "free_port",
    "http_ok",
    "influxd_conf",
    "port_open",
    "require",
    "vm_export",
    "wait_until",
]
