"""The hub's embedded MQTT 3.1.1 broker, for the first run and the demo (production uses Mosquitto).

``EmbeddedBroker`` runs on an asyncio loop you own; ``ThreadedBroker`` runs it on its
own thread with a synchronous ``start()`` / ``stop()``.
"""

from hub.broker.server import Authenticate, Authorize, BrokerStats, EmbeddedBroker
from hub.broker.threaded import BrokerStartError, ThreadedBroker

__all__ = ["Authenticate", "Authorize", "BrokerStartError", "BrokerStats", "EmbeddedBroker", "ThreadedBroker"]
