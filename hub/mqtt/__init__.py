"""MQTT 3.1.1 on the wire, written once: packet values (:mod:`hub.mqtt.packets`) and the codec
(:mod:`hub.mqtt.codec`: framing, decoding, encoding).

The embedded broker (:mod:`hub.broker`), the hub's link (:mod:`hub.ingest.link`), the
load generator and the benches (:mod:`simulators`) all speak MQTT through it; it is pure
(no sockets, no threads), so each of them keeps its own I/O.
"""
