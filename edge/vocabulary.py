"""The one vocabulary: event types, metrics, case categories and the forces that own them.

Every name that crosses a component boundary is defined here, once: the camera
pipeline, the drivers and the simulator profiles raise :class:`EventType` members;
the hub's default rules, the example and generated case configs and the Open311
service list take their names from :data:`EVENT_TYPES`, :data:`CATEGORIES` and
:data:`FORCE_KINDS`. Config that names a word not in here is refused when it is
loaded, with the closest known word (:func:`require_known`). Like ``edge.wire``
this module needs nothing beyond the standard library.

Adding a device alarm is adding an :class:`EventType` member and its
:class:`EventTypeInfo`; the hub's rule set and the seam test
(``tests/test_alarm_matrix.py``) then say what else is missing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from edge.wire import DeviceKind, Severity


class UnknownNameError(ValueError):
    """A config names a word the vocabulary does not know; carries the word and the closest known one."""

    def __init__(self, what: str, word: str, closest: str | None) -> None:
        hint = f" (did you mean {closest!r}?)" if closest else ""
        super().__init__(f"unknown {what} {word!r}{hint}")
        self.what, self.word, self.closest = what, word, closest


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word nearest to ``word`` (difflib ratio ≥ 0.6), or None."""
    pool = sorted(str(k) for k in known)
    hits = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if hits:
        return hits[0]
    # a part of a longer word (fire -> fire_safety, kiosk -> kiosk_service)
    parts = [k for k in pool if word and (k.startswith(word) or word in k.split("_"))]
    return parts[0] if parts else None


def require_known(what: str, word: str, known: Iterable[str]) -> str:
    """Return ``word`` when it is known, else raise :class:`UnknownNameError` naming the closest."""
    pool = {str(k) for k in known}
    if word not in pool:
        raise UnknownNameError(what, word, closest(word, pool))
    return word


# ------------------------------------------------------------------ forces


class ForceKind(StrEnum):
    """The professional forces beside the grid worker ("3 teams + 10 forces")."""

    FIRE = "fire"
    POLICE = "police"
    URBAN_MANAGEMENT = "urban_management"
    PROPERTY = "property"
    IT = "it"
    MAINTENANCE = "maintenance"
    JUDICIAL = "judicial"
    SAFETY = "safety"
    VOLUNTEERS = "volunteers"


#: zh and en names of each force kind, for pages and service lists.
FORCE_NAMES: Final[Mapping[ForceKind, tuple[str, str]]] = MappingProxyType(
    {
        ForceKind.FIRE: ("Fire brigade", "消防救援"),
        ForceKind.POLICE: ("Community police", "社区民警"),
        ForceKind.URBAN_MANAGEMENT: ("Urban management", "城市管理"),
        ForceKind.PROPERTY: ("Property management", "物业管理"),
        ForceKind.IT: ("Service centre IT", "服务中心信息技术"),
        ForceKind.MAINTENANCE: ("Device maintenance", "设备运维"),
        ForceKind.JUDICIAL: ("Judicial office", "司法所"),
        ForceKind.SAFETY: ("Safety supervision", "安全监管"),
        ForceKind.VOLUNTEERS: ("Volunteers", "志愿者"),
    }
)
FORCE_KINDS: Final = frozenset(ForceKind)


# -------------------------------------------------------------- categories


class Category(StrEnum):
    """Case categories: what kind of problem, and so which force owns it."""

    FIRE_SAFETY = "fire_safety"
    PUBLIC_SECURITY = "public_security"
    ENVIRONMENT_SANITATION = "environment_sanitation"
    FACILITIES = "facilities"
    KIOSK_SERVICE = "kiosk_service"
    DEVICE_FAULT = "device_fault"
    GENERAL = "general"


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """Who owns a category, whether its clock runs around the clock, and its names."""

    owner: ForceKind | None  # None: the community itself (属地兜底)
    around_the_clock: bool
    en: str
    zh: str
    #: Residents may report it through Open311.
    open311: bool = True


CATEGORIES: Final[Mapping[Category, CategoryInfo]] = MappingProxyType(
    {
        Category.FIRE_SAFETY: CategoryInfo(ForceKind.FIRE, True, "Fire safety", "消防安全"),
        Category.PUBLIC_SECURITY: CategoryInfo(ForceKind.POLICE, True, "Public security", "治安"),
        Category.ENVIRONMENT_SANITATION: CategoryInfo(
            ForceKind.URBAN_MANAGEMENT, False, "Environment and sanitation", "环境卫生"
        ),
        Category.FACILITIES: CategoryInfo(ForceKind.PROPERTY, False, "Facilities", "公共设施"),
        Category.KIOSK_SERVICE: CategoryInfo(ForceKind.IT, False, "Self-service kiosk", "自助终端"),
        Category.DEVICE_FAULT: CategoryInfo(ForceKind.MAINTENANCE, False, "Device fault", "设备故障", open311=False),
        Category.GENERAL: CategoryInfo(None, False, "General problem", "其他问题"),
    }
)
#: Words a config may use where a category is expected ('*': any).
CATEGORY_NAMES: Final = frozenset(Category)


def owner_routing(forces: Mapping[str, str]) -> dict[str, str]:
    """Category → force id for every category whose owning kind is among ``forces`` (force id → kind)."""
    by_kind: dict[str, str] = {}
    for force_id, kind in sorted(forces.items()):
        by_kind.setdefault(kind, force_id)
    return {
        cat.value: by_kind[info.owner.value]
        for cat, info in CATEGORIES.items()
        if info.owner is not None and info.owner.value in by_kind
    }


# ------------------------------------------------------------- event types


class EventType(StrEnum):
    """Alarms devices raise (``type`` of an event message)."""

    # sensors
    SMOKE = "smoke"
    HEAT = "heat"
    GAS_LEAK = "gas_leak"
    WATER_LEAK = "water_leak"
    MANHOLE_TILT = "manhole_tilt"
    CHARGER_OVERHEAT = "charger_overheat"
    OVERCURRENT = "overcurrent"
    LOW_PRESSURE = "low_pressure"
    BIN_FULL = "bin_full"
    AIR_QUALITY = "air_quality"
    CO2_HIGH = "co2_high"
    NOISE = "noise"
    BATTERY_LOW = "battery_low"
    # kiosks
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    PRINTER_JAM = "printer_jam"
    READER_FAULT = "reader_fault"
    APP_CRASH = "app_crash"
    DOOR_OPEN = "door_open"
    DISK_FULL = "disk_full"
    MEMORY_HIGH = "memory_high"
    # cameras
    CROWD_GATHERING = "crowd_gathering"
    INTRUSION = "intrusion"
    LOITERING = "loitering"
    TAMPER_COVERED = "tamper_covered"
    TAMPER_DEFOCUS = "tamper_defocus"
    TAMPER_MOVED = "tamper_moved"
    STREAM_LOST = "stream_lost"
    # any device
    OVERHEAT = "overheat"
    # raised by the hub itself for a device over its message rate
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class EventTypeInfo:
    """Which device kinds raise an event type, the category it opens, its severity and names."""

    kinds: frozenset[DeviceKind]
    category: Category
    severity: Severity
    en: str
    zh: str


_SENSOR, _KIOSK, _CAMERA = frozenset({DeviceKind.SENSOR}), frozenset({DeviceKind.KIOSK}), frozenset({DeviceKind.CAMERA})
_ANY = frozenset(DeviceKind)
_C, _S = Category, Severity

EVENT_TYPES: Final[Mapping[EventType, EventTypeInfo]] = MappingProxyType(
    {
        EventType.SMOKE: EventTypeInfo(_SENSOR, _C.FIRE_SAFETY, _S.CRITICAL, "Smoke detected", "烟雾报警"),
        EventType.HEAT: EventTypeInfo(_SENSOR, _C.FIRE_SAFETY, _S.CRITICAL, "Heat alarm", "高温报警"),
        EventType.GAS_LEAK: EventTypeInfo(_SENSOR, _C.FIRE_SAFETY, _S.CRITICAL, "Gas leak", "燃气泄漏"),
        EventType.WATER_LEAK: EventTypeInfo(_SENSOR, _C.FACILITIES, _S.MAJOR, "Water leak", "漏水"),
        EventType.MANHOLE_TILT: EventTypeInfo(_SENSOR, _C.FACILITIES, _S.MAJOR, "Manhole cover displaced", "井盖移位"),
        EventType.CHARGER_OVERHEAT: EventTypeInfo(
            _SENSOR, _C.FIRE_SAFETY, _S.CRITICAL, "E-bike charger overheating", "电动车充电桩过热"
        ),
        EventType.OVERCURRENT: EventTypeInfo(
            _SENSOR, _C.FIRE_SAFETY, _S.MAJOR, "E-bike charger overcurrent", "电动车充电桩过流"
        ),
        EventType.LOW_PRESSURE: EventTypeInfo(
            _SENSOR, _C.FIRE_SAFETY, _S.MAJOR, "Hydrant pressure low", "消防栓水压低"
        ),
        EventType.BIN_FULL: EventTypeInfo(_SENSOR, _C.ENVIRONMENT_SANITATION, _S.MINOR, "Bin full", "垃圾桶满溢"),
        EventType.AIR_QUALITY: EventTypeInfo(
            _SENSOR, _C.ENVIRONMENT_SANITATION, _S.MAJOR, "Poor air quality", "空气质量差"
        ),
        EventType.CO2_HIGH: EventTypeInfo(_SENSOR, _C.ENVIRONMENT_SANITATION, _S.MINOR, "CO2 high", "二氧化碳浓度高"),
        EventType.NOISE: EventTypeInfo(_SENSOR, _C.ENVIRONMENT_SANITATION, _S.MINOR, "Noise nuisance", "噪声扰民"),
        EventType.BATTERY_LOW: EventTypeInfo(_SENSOR, _C.DEVICE_FAULT, _S.MINOR, "Battery low", "电池电量低"),
        EventType.PAPER_LOW: EventTypeInfo(_KIOSK, _C.KIOSK_SERVICE, _S.INFO, "Kiosk paper low", "终端纸张不足"),
        EventType.PAPER_OUT: EventTypeInfo(_KIOSK, _C.KIOSK_SERVICE, _S.MINOR, "Kiosk paper out", "终端缺纸"),
        EventType.PRINTER_JAM: EventTypeInfo(_KIOSK, _C.KIOSK_SERVICE, _S.MINOR, "Kiosk printer jam", "终端卡纸"),
        EventType.READER_FAULT: EventTypeInfo(
            _KIOSK, _C.KIOSK_SERVICE, _S.MAJOR, "Kiosk card/ID reader fault", "终端读卡器故障"
        ),
        EventType.APP_CRASH: EventTypeInfo(
            _KIOSK, _C.KIOSK_SERVICE, _S.MAJOR, "Kiosk application crashed", "终端应用崩溃"
        ),
        EventType.DOOR_OPEN: EventTypeInfo(_KIOSK, _C.PUBLIC_SECURITY, _S.MAJOR, "Kiosk door open", "终端柜门被打开"),
        EventType.DISK_FULL: EventTypeInfo(_KIOSK, _C.KIOSK_SERVICE, _S.MAJOR, "Kiosk disk full", "终端磁盘已满"),
        EventType.MEMORY_HIGH: EventTypeInfo(_KIOSK, _C.KIOSK_SERVICE, _S.MINOR, "Kiosk memory high", "终端内存不足"),
        EventType.CROWD_GATHERING: EventTypeInfo(_CAMERA, _C.PUBLIC_SECURITY, _S.MAJOR, "Crowd gathering", "人员聚集"),
        EventType.INTRUSION: EventTypeInfo(
            _CAMERA, _C.PUBLIC_SECURITY, _S.MAJOR, "Intrusion in restricted zone", "区域入侵"
        ),
        EventType.LOITERING: EventTypeInfo(_CAMERA, _C.PUBLIC_SECURITY, _S.MINOR, "Loitering", "徘徊逗留"),
        EventType.TAMPER_COVERED: EventTypeInfo(
            _CAMERA, _C.PUBLIC_SECURITY, _S.MAJOR, "Camera covered", "摄像头被遮挡"
        ),
        EventType.TAMPER_DEFOCUS: EventTypeInfo(
            _CAMERA, _C.PUBLIC_SECURITY, _S.MINOR, "Camera out of focus", "摄像头失焦"
        ),
        EventType.TAMPER_MOVED: EventTypeInfo(_CAMERA, _C.PUBLIC_SECURITY, _S.MAJOR, "Camera moved", "摄像头被移动"),
        EventType.STREAM_LOST: EventTypeInfo(_CAMERA, _C.DEVICE_FAULT, _S.MAJOR, "Camera stream lost", "视频流中断"),
        EventType.OVERHEAT: EventTypeInfo(_KIOSK, _C.DEVICE_FAULT, _S.MAJOR, "Device overheating", "设备过热"),
        EventType.RATE_LIMITED: EventTypeInfo(
            _ANY, _C.DEVICE_FAULT, _S.MINOR, "Device over its message rate limit", "设备消息超限"
        ),
    }
)
#: Event types the hub raises on a device's behalf; no device sends them.
HUB_EVENT_TYPES: Final = frozenset({EventType.RATE_LIMITED})


def event_types_of(kind: DeviceKind) -> tuple[EventType, ...]:
    """Every event type a device of ``kind`` can raise, in vocabulary order."""
    return tuple(t for t, info in EVENT_TYPES.items() if kind in info.kinds and t not in HUB_EVENT_TYPES)


# ----------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """A telemetry metric: its unit (empty: a count, ratio or flag) and names."""

    unit: str
    en: str
    zh: str


METRICS: Final[Mapping[str, MetricInfo]] = MappingProxyType(
    {
        # environment and safety sensors
        "temp_c": MetricInfo("°C", "Temperature", "温度"),
        "humidity_pct": MetricInfo("%", "Humidity", "湿度"),
        "pm25": MetricInfo("µg/m³", "PM2.5", "PM2.5"),
        "co2_ppm": MetricInfo("ppm", "CO2", "二氧化碳"),
        "noise_db": MetricInfo("dB", "Noise", "噪声"),
        "smoke_obscuration": MetricInfo("%/m", "Smoke obscuration", "烟雾遮光率"),
        "leak": MetricInfo("", "Water leak (0/1)", "漏水"),
        "tilt_deg": MetricInfo("°", "Cover tilt", "井盖倾角"),
        "current_a": MetricInfo("A", "Charging current", "充电电流"),
        "pressure_kpa": MetricInfo("kPa", "Hydrant pressure", "消防栓水压"),
        "fill_pct": MetricInfo("%", "Bin fill level", "垃圾桶满溢度"),
        "gas_lel_pct": MetricInfo("%LEL", "Combustible gas", "可燃气体"),
        "battery_pct": MetricInfo("%", "Battery", "电池电量"),
        "rssi_dbm": MetricInfo("dBm", "Signal strength", "信号强度"),
        # kiosks and hosts
        "cpu_pct": MetricInfo("%", "CPU", "CPU"),
        "mem_pct": MetricInfo("%", "Memory", "内存"),
        "disk_pct": MetricInfo("%", "Disk", "磁盘"),
        "uptime_s": MetricInfo("s", "Uptime", "运行时间"),
        "latency_ms": MetricInfo("ms", "Latency", "延迟"),
        "paper_pct": MetricInfo("%", "Paper level", "纸张余量"),
        "transactions": MetricInfo("", "Transactions", "业务笔数"),
        # cameras
        "fps": MetricInfo("fps", "Frame rate", "帧率"),
        "stream_ok": MetricInfo("", "Stream up (0/1)", "视频流在线"),
        "frame_age_s": MetricInfo("s", "Last frame age", "最新帧时长"),
        "people": MetricInfo("", "People in view", "画面人数"),
        "motion_ratio": MetricInfo("", "Motion ratio", "运动比例"),
        "brightness": MetricInfo("", "Brightness", "亮度"),
        "sharpness": MetricInfo("", "Sharpness", "清晰度"),
    }
)


def event_title(event_type: str, lang: str = "en") -> str:
    """The event type's human title in ``lang`` (zh or en); the raw word for a declared one."""
    if event_type not in EVENT_TYPES:
        return event_type.replace("_", " ")
    info = EVENT_TYPES[EventType(event_type)]
    return info.zh if lang.startswith("zh") else info.en
