"""Modbus driver: pure decoding, config validation, and reads from a real pymodbus TCP server."""

from __future__ import annotations

import asyncio
import math
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.drivers import DriverError, get_driver_spec
from edge.drivers.modbus import ModbusConfig, ModbusDriver, RegisterSpec, decode_registers
from simulators.servers import free_port, port_open, wait_until

PI_BIG = [0x4049, 0x0FDB]  # float32 pi, Modbus big-endian


def words(fmt: str, value: float, word_order: str = "big", byte_order: str = "big") -> list[int]:
    """Encode like a device would: struct big-endian, then reorder words/bytes."""
    raw = struct.pack(fmt, value)
    pairs = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if byte_order == "little":
        pairs = [p[::-1] for p in pairs]
    if word_order == "little":
        pairs.reverse()
    return [int.from_bytes(p, "big") for p in pairs]


def test_decode_known_vectors() -> None:
    assert decode_registers(PI_BIG, "float32")[0] == pytest.approx(math.pi, rel=1e-7)
    assert decode_registers([0x0FDB, 0x4049], "float32", word_order="little")[0] == pytest.approx(math.pi, rel=1e-7)
    assert decode_registers([0x4940, 0xDB0F], "float32", byte_order="little")[0] == pytest.approx(math.pi, rel=1e-7)
    assert decode_registers([0xFFFF, 0xFFFE], "int32") == [-2]
    assert decode_registers([0x5678, 0x1234], "uint32", word_order="little") == [0x12345678]
    assert decode_registers([0xFFFF], "int16") == [-1]
    assert decode_registers([0xFFFF], "uint16") == [65535]
    assert decode_registers([1, 2, 3], "uint16") == [1, 2, 3]


@pytest.mark.parametrize("word_order", ["big", "little"])
@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_decode_round_trips_every_order(word_order: str, byte_order: str) -> None:
    assert decode_registers(words(">i", -123456, word_order, byte_order), "int32", word_order, byte_order) == [-123456]
    got = decode_registers(words(">f", 21.75, word_order, byte_order), "float32", word_order, byte_order)
    assert got == [21.75]


def test_decode_refuses_odd_register_count() -> None:
    with pytest.raises(ValueError, match="do not split"):
        decode_registers([1, 2, 3], "int32")


def _cfg(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "modbus", "host": "127.0.0.1", "registers": [{"name": "v", "address": 0}]}
    base.update(over)
    return base


def test_config_errors_name_the_key() -> None:
    model = get_driver_spec("modbus").config_model
    with pytest.raises(ValidationError) as info:
        model.model_validate(_cfg(registers=[{"name": "v", "address": 0, "scal": 2}]))
    assert info.value.errors()[0]["loc"] == ("registers", 0, "scal")
    with pytest.raises(ValidationError, match="bool is for coil"):
        model.model_validate(_cfg(registers=[{"name": "v", "address": 0, "kind": "coil", "data_type": "int16"}]))
    with pytest.raises(ValidationError, match="multiple of 2"):
        model.model_validate(_cfg(registers=[{"name": "v", "address": 0, "data_type": "float32", "count": 3}]))
    with pytest.raises(ValidationError, match="needs host"):
        model.model_validate(_cfg(host=None))
    with pytest.raises(ValidationError, match="needs serial_port"):
        model.model_validate(_cfg(transport="rtu"))
    with pytest.raises(ValidationError, match="repeated: v"):
        model.model_validate(_cfg(registers=[{"name": "v", "address": 0}, {"name": "v", "address": 1}]))
    assert model.model_validate(_cfg(transport="rtu", serial_port="/dev/ttyUSB0", host=None))


class ModbusTestServer:
    """A real pymodbus TCP server on a free loopback port, in its own event loop thread."""

    def __init__(
        self,
        coils: list[bool],
        discrete: list[bool],
        holding: list[int],
        inputs: list[int],
        *,
        rtu: bool = False,
        unit: int = 1,
    ) -> None:
        self.rtu = rtu

        def block(values: list[Any], dtype: Any) -> list[Any]:
            return [SimData(0, values=values, datatype=dtype)]

        self.device = SimDevice(
            id=unit,
            simdata=(
                block(coils, DataType.BITS),
                block(discrete, DataType.BITS),
                block(holding, DataType.REGISTERS),
                block(inputs, DataType.REGISTERS),
            ),
        )
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None

    async def _start(self) -> None:
        framer = FramerType.RTU if self.rtu else FramerType.SOCKET
        self.server = ModbusTcpServer(self.device, address=("127.0.0.1", self.port), framer=framer)
        self.task = asyncio.ensure_future(self.server.serve_forever())

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)
        wait_until(lambda: port_open(self.port), 5, what="modbus server listening")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


HOLDING = [
    *words(">f", 21.75),  # 0-1 float32 big
    *words(">f", -3.5, "little"),  # 2-3 float32 word-swapped
    *words(">i", -70000),  # 4-5 int32
    *words(">I", 4_000_000_000, "little", "little"),  # 6-7 uint32 both swapped
    0xFF38,  # 8 int16 -200
    1234,  # 9 uint16 scaled
    10,
    20,
    30,  # 10-12 array
]


@pytest.fixture(scope="module")
def modbus_server() -> Iterator[ModbusTestServer]:
    server = ModbusTestServer([True, False, True], [False, True], HOLDING, [512, 7])
    server.start()
    yield server
    server.stop()


@pytest.mark.integration
def test_reads_every_type_from_a_real_server(modbus_server: ModbusTestServer) -> None:
    regs = [
        {"name": "temp_c", "address": 0, "data_type": "float32"},
        {"name": "flow", "address": 2, "data_type": "float32", "word_order": "little"},
        {"name": "energy", "address": 4, "data_type": "int32"},
        {"name": "counter", "address": 6, "data_type": "uint32", "word_order": "little", "byte_order": "little"},
        {"name": "delta", "address": 8, "data_type": "int16"},
        {"name": "voltage_v", "address": 9, "scale": 0.1, "offset": -3.0},
        {"name": "arr", "address": 10, "count": 3},
        {"name": "level", "address": 0, "kind": "input", "scale": 0.5},
        {"name": "relay", "address": 0, "kind": "coil", "count": 3},
        {"name": "door", "address": 1, "kind": "discrete"},
    ]
    config = ModbusConfig.model_validate(_cfg(port=modbus_server.port, registers=regs))
    driver = ModbusDriver(config)
    try:
        metrics = dict(driver.poll(0).metrics)
    finally:
        driver.close()
    assert metrics.pop("voltage_v") == pytest.approx(1234 * 0.1 - 3.0)
    assert metrics == {
        "temp_c": 21.75,
        "flow": -3.5,
        "energy": -70000,
        "counter": 4_000_000_000,
        "delta": -200,
        "arr_0": 10,
        "arr_1": 20,
        "arr_2": 30,
        "level": 256.0,
        "relay_0": True,
        "relay_1": False,
        "relay_2": True,
        "door": True,
    }


@pytest.mark.integration
def test_illegal_address_is_a_permanent_error(modbus_server: ModbusTestServer) -> None:
    driver = ModbusDriver(
        ModbusConfig.model_validate(_cfg(port=modbus_server.port, registers=[{"name": "x", "address": 500}]))
    )
    try:
        with pytest.raises(DriverError, match=r"refused x \(holding 500.*exception code 2") as info:
            driver.poll(0)
        assert info.value.retryable is False
    finally:
        driver.close()


@pytest.mark.integration
def test_rtu_framing_over_a_serial_url() -> None:
    pytest.importorskip("serial", reason="Modbus RTU needs pyserial")
    # pyserial's socket:// URL stands in for /dev/ttyUSB0: same RTU frames and CRCs, over TCP
    server = ModbusTestServer([True], [False], [*words(">f", 230.5), 42], [1], rtu=True, unit=7)
    server.start()
    try:
        config = ModbusConfig.model_validate(
            _cfg(
                transport="rtu",
                host=None,
                serial_port=f"socket://127.0.0.1:{server.port}",
                unit_id=7,
                registers=[{"name": "volts", "address": 0, "data_type": "float32"}, {"name": "n", "address": 2}],
            )
        )
        driver = ModbusDriver(config)
        try:
            assert driver.poll(0).metrics == {"volts": 230.5, "n": 42}
        finally:
            driver.close()
    finally:
        server.stop()


def test_unreachable_device_is_retryable() -> None:
    config = ModbusConfig.model_validate(_cfg(port=free_port(), timeout_s=0.5, retries=0))
    driver = ModbusDriver(config)
    with pytest.raises(DriverError, match=r"cannot connect to Modbus device at 127.0.0.1:\d+") as info:
        driver.poll(0)
    assert info.value.retryable is True
    driver.close()


def test_register_defaults() -> None:
    assert RegisterSpec(name="a", address=1).read_count == 1
    assert RegisterSpec(name="a", address=1, data_type="float32").read_count == 2
    assert RegisterSpec(name="a", address=1, kind="coil").effective_type == "bool"
