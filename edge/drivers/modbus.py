"""``modbus`` driver: read registers and coils from a Modbus TCP or RTU device (pymodbus 3.x client).

Each configured register becomes a metric: ``kind`` holding / input (16-bit
registers) or coil / discrete (bits); ``data_type`` int16, uint16, int32, uint32,
float32 (registers) or bool (bits); ``word_order`` and ``byte_order`` for devices
that disagree with Modbus big-endian; value = raw * ``scale`` + ``offset``. A
``count`` larger than one value's width reads an array and reports ``name_0``,
``name_1``... A device that cannot be reached raises a retryable
:class:`~edge.drivers.DriverError`; a Modbus exception response (illegal address...)
raises one naming the register.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import struct
from collections.abc import Sequence
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.drivers import DriverConfigBase, DriverError, Sample, register_driver
from edge.wire import METRIC_PATTERN, MetricValue

logger = logging.getLogger(__name__)

DataType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
Order = Literal["big", "little"]
#: data type -> (registers per value, struct format)
WIDTH: Final[dict[str, tuple[int, str]]] = {
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "float32": (2, ">f"),
}
#: Modbus exception codes that no retry will fix (illegal function, address, value).
PERMANENT_CODES: Final = frozenset({1, 2, 3})


class RegisterSpec(BaseModel):
    """One value (or array) to read, and the metric name it is reported under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=f"^{METRIC_PATTERN}$", description="Metric name.")
    address: int = Field(ge=0, le=65535, description="Zero-based register or bit address.")
    kind: Literal["holding", "input", "coil", "discrete"] = Field(default="holding", description="Modbus table.")
    data_type: DataType | None = Field(default=None, description="Value type; default uint16, bool for coil/discrete.")
    count: int | None = Field(default=None, ge=1, le=125, description="Registers/bits to read; default one value.")
    word_order: Order = Field(default="big", description="Order of 16-bit words in 32-bit values (big: high first).")
    byte_order: Order = Field(default="big", description="Byte order inside each 16-bit word.")
    scale: float = Field(default=1.0, description="Multiplier applied to the raw value.")
    offset: float = Field(default=0.0, description="Added after scaling.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        bits = self.kind in ("coil", "discrete")
        dtype = self.effective_type
        if bits != (dtype == "bool"):
            raise ValueError(f"data_type {dtype} does not fit kind {self.kind} (bool is for coil/discrete only)")
        if not bits:
            width = WIDTH[dtype][0]
            if self.count is not None and self.count % width:
                raise ValueError(f"count {self.count} is not a multiple of {width} registers per {dtype}")
        return self

    @property
    def effective_type(self) -> str:
        """The data type, with the default filled in."""
        if self.data_type is not None:
            return self.data_type
        return "bool" if self.kind in ("coil", "discrete") else "uint16"

    @property
    def read_count(self) -> int:
        """Registers or bits to request."""
        if self.count is not None:
            return self.count
        return 1 if self.effective_type == "bool" else WIDTH[self.effective_type][0]


class ModbusConfig(DriverConfigBase):
    """Config of the Modbus driver."""

    type: Literal["modbus"] = Field(description="Driver key.")
    transport: Literal["tcp", "rtu"] = Field(default="tcp", description="Modbus TCP or RTU over a serial line.")
    host: str | None = Field(default=None, description="Device address (tcp).")
    port: int = Field(default=502, ge=1, le=65535, description="TCP port (tcp).")
    serial_port: str | None = Field(default=None, description="Serial device such as /dev/ttyUSB0 (rtu).")
    baudrate: int = Field(default=9600, gt=0, description="Serial speed (rtu).")
    parity: Literal["N", "E", "O"] = Field(default="N", description="Serial parity (rtu).")
    stopbits: Literal[1, 2] = Field(default=1, description="Serial stop bits (rtu).")
    bytesize: Literal[7, 8] = Field(default=8, description="Serial data bits (rtu).")
    unit_id: int = Field(default=1, ge=0, le=247, description="Modbus unit (slave/device) id.")
    timeout_s: float = Field(default=3.0, gt=0, le=60, description="Timeout of one request.")
    retries: int = Field(default=1, ge=0, le=10, description="Retries of a request before the poll fails.")
    registers: tuple[RegisterSpec, ...] = Field(min_length=1, description="What to read, one metric each.")

    @model_validator(mode="after")
    def _transport_fields(self) -> Self:
        if self.transport == "tcp" and not self.host:
            raise ValueError("transport tcp needs host")
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport rtu needs serial_port")
        names = [r.name for r in self.registers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"register names must be unique; repeated: {', '.join(dupes)}")
        return self


def decode_registers(
    words: Sequence[int], data_type: str, word_order: str = "big", byte_order: str = "big"
) -> list[int | float]:
    """Decode 16-bit register words into values of ``data_type`` honouring word and byte order."""
    width, fmt = WIDTH[data_type]
    if len(words) % width:
        raise ValueError(f"{len(words)} registers do not split into {data_type} values of {width}")
    values: list[int | float] = []
    for i in range(0, len(words), width):
        group = list(words[i : i + width])
        if word_order == "little":
            group.reverse()
        raw = b"".join((w & 0xFFFF).to_bytes(2, "big")[:: -1 if byte_order == "little" else 1] for w in group)
        values.append(struct.unpack(fmt, raw)[0])
    return values


def scaled(raw: int | float | bool, spec: RegisterSpec) -> MetricValue | None:
    """Apply scale and offset; integers stay integers when both are neutral; non-finite gives None."""
    if isinstance(raw, bool):
        return raw
    if spec.scale == 1.0 and spec.offset == 0.0 and isinstance(raw, int):
        return raw
    value = float(raw) * spec.scale + spec.offset
    return value if math.isfinite(value) else None


class ModbusDriver:
    """Polls the configured registers over one pymodbus client, reconnecting when needed."""

    def __init__(self, config: ModbusConfig) -> None:
        self.config = config
        self._client: Any = None

    @property
    def where(self) -> str:
        """Human-readable device address."""
        cfg = self.config
        return f"{cfg.host}:{cfg.port}" if cfg.transport == "tcp" else str(cfg.serial_port)

    def _connect(self) -> Any:
        if self._client is not None and self._client.connected:
            return self._client

        cfg = self.config
        if cfg.transport == "tcp":
            assert cfg.host is not None
            client: Any = ModbusTcpClient(cfg.host, port=cfg.port, timeout=cfg.timeout_s, retries=cfg.retries)
        else:
            assert cfg.serial_port is not None
            if importlib.util.find_spec("serial") is None:
                raise DriverError("Modbus RTU needs pyserial: pip install 'pymodbus[serial]'", retryable=False)
            client = ModbusSerialClient(
                cfg.serial_port,
                baudrate=cfg.baudrate,
                parity=cfg.parity,
                stopbits=cfg.stopbits,
                bytesize=cfg.bytesize,
                timeout=cfg.timeout_s,
                retries=cfg.retries,
            )
        if not client.connect():
            client.close()
            raise DriverError(f"cannot connect to Modbus device at {self.where}", retryable=True)
        self._client = client
        return client

    def _read(self, client: Any, spec: RegisterSpec) -> Any:
        readers = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }
        try:
            resp = readers[spec.kind](spec.address, count=spec.read_count, device_id=self.config.unit_id)
        except ModbusException as exc:
            self.close()
            raise DriverError(
                f"Modbus {self.where}: reading {spec.name} ({spec.kind} {spec.address}) failed: {exc}"
            ) from exc
        if resp.isError():
            code = getattr(resp, "exception_code", None)
            raise DriverError(
                f"Modbus {self.where}: device refused {spec.name} ({spec.kind} {spec.address}, "
                f"count {spec.read_count}) with exception code {code}",
                retryable=code not in PERMANENT_CODES,
            )
        return resp

    def poll(self, now_ms: int) -> Sample:
        """Read every configured register once."""
        client = self._connect()
        metrics: dict[str, MetricValue] = {}
        for spec in self.config.registers:
            resp = self._read(client, spec)
            raws: list[int | float | bool]
            if spec.effective_type == "bool":
                raws = [bool(b) for b in resp.bits[: spec.read_count]]
            else:
                raws = list(decode_registers(resp.registers, spec.effective_type, spec.word_order, spec.byte_order))
            for index, raw in enumerate(raws):
                name = spec.name if len(raws) == 1 else f"{spec.name}_{index}"
                value = scaled(raw, spec)
                if value is None:
                    logger.warning("Modbus %s: %s is not a finite number; skipped", self.where, name)
                    continue
                metrics[name] = value
        return Sample(metrics)

    def close(self) -> None:
        """Close the connection (the next poll reconnects)."""
        if self._client is not None:
            self._client.close()
            self._client = None


register_driver("modbus", ModbusConfig, ModbusDriver, "Modbus TCP/RTU registers and coils via pymodbus")
