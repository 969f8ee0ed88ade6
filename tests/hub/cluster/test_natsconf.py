"""The generated NATS configuration: text, partition function, and the mapping as a real nats-server applies it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.cli import main
from hub.cluster.natsconf import (
    NatsNode,
    cluster_configs,
    command_subject,
    ingest_mappings,
    partition_of,
    topic_of_subject,
)
from simulators.servers.nats import solo_nats


def test_mappings_cover_every_device_to_hub_channel_and_not_commands() -> None:
    mappings = ingest_mappings(8)
    sources = set(mappings)
    assert sources == {
        "gs.v1.*.*.status",
        "gs.v1.*.*.telemetry",
        "gs.v1.*.*.event",
        "gs.v1.*.*.gap",
        "gs.v1.*.*.snapshot.*",
        "gs.v1.*.*.cmd.ack",
    }
    assert "gs.v1.*.*.cmd" not in sources  # the hub publishes commands on the plain subject
    assert mappings["gs.v1.*.*.telemetry"] == (
        "gsp.{{partition(8,1,2)}}.gs.v1.{{wildcard(1)}}.{{wildcard(2)}}.telemetry"
    )
    assert ingest_mappings(8, key="site")["gs.v1.*.*.event"].startswith("gsp.{{partition(8,1)}}.")


def test_subjects_go_back_to_the_topics_of_the_wire_contract() -> None:
    name = wire.topic("site-a", "cam-7", wire.Channel.SNAPSHOT, event_id="ev-1")
    assert topic_of_subject("gsp.3." + command_subject(name)) == name
    assert wire.parse_topic(topic_of_subject("gsp.11.gs.v1.s.d.cmd.ack")).channel is wire.Channel.CMD_ACK
    with pytest.raises(ValueError):
        topic_of_subject("gs.v1.s.d.telemetry")


def test_a_three_node_config_routes_to_the_two_others(tmp_path: Path) -> None:
    nodes = [NatsNode(f"n{i}", f"10.0.0.{i + 1}", 4222, 6222, 1883) for i in range(3)]
    configs = cluster_configs(nodes, tmp_path, partitions=24)
    text = configs["n1"]
    assert 'server_name: "n1"' in text and "nats-route://10.0.0.1:6222" in text and "nats-route://10.0.0.3:6222" in text
    assert '10.0.0.2:6222"\n' not in text.split("routes")[1].split("]")[0]  # not a route to itself
    assert "stream_replicas: 3" in text and "partition(24,1,2)" in text and "jetstream {" in text


def test_partition_function_spreads_devices() -> None:
    counts = [0] * 12
    for i in range(1200):
        counts[partition_of("sunrise", f"dev-{i:04d}", 12)] += 1
    assert min(counts) > 50


@pytest.mark.integration
def test_nats_server_maps_mqtt_publishes_to_the_partition_replicas_compute(tmp_path: Path) -> None:
    """The server's partition(P, site, device) is the replicas' partition_of, for many devices."""
    with solo_nats(tmp_path, partitions=7) as node:
        devices = [("sunrise", f"smoke-{i:03d}") for i in range(40)] + [("site-b", "kiosk-1"), ("a", "b")]
        seen = asyncio.run(_mapped(node, devices))
    for site, device in devices:
        assert seen[(site, device)] == partition_of(site, device, 7), (site, device)


async def _mapped(node: NatsNode, devices: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    nc = await nats.connect(node.client_url)
    seen: dict[tuple[str, str], int] = {}

    async def on_msg(msg: object) -> None:
        parts = msg.subject.split(".")  # type: ignore[attr-defined]
        seen[(parts[4], parts[5])] = int(parts[1])

    await nc.subscribe("gsp.>", cb=on_msg)
    await nc.flush()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="mapping-probe")
    client.connect("127.0.0.1", node.mqtt_port)
    client.loop_start()
    try:
        for site, device in devices:
            client.publish(wire.topic(site, device, wire.Channel.TELEMETRY), b"{}", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while len(seen) < len(devices) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
        await nc.close()
    return seen


def test_cluster_config_command_writes_a_file_per_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["hub", "cluster-config", "--node", "a=10.1.0.1", "--node", "b=10.1.0.2", "--node", "c=10.1.0.3",
                 "--partitions", "6", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.conf", "b.conf", "c.conf"]
    assert "partition(6,1,2)" in (tmp_path / "b.conf").read_text()
    assert "--cluster nats://10.1.0.1:4222,nats://10.1.0.2:4222,nats://10.1.0.3:4222" in capsys.readouterr().out
    assert main(["hub", "cluster-config", "--node", "nonsense", "--out", str(tmp_path)]) == 2
