"""Pydantic configuration shared by the real camera driver and the simulated one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.camera.zones import HourWindow, Polygon, ZoneConfigError
from edge.drivers import DriverConfigBase

PointList = list[tuple[float, float]]
#: People 80-300 px tall cover the usual CCTV framings at 720p and 1080p (see docs/edge.md).
DEFAULT_MIN_PERSON_PX = 80


def _check_polygon(points: PointList) -> PointList:
    try:
        Polygon(tuple(points))
    except ZoneConfigError as exc:
        raise ValueError(str(exc)) from exc
    return points


class ZoneConfig(BaseModel):
    """A named polygon zone and the events it raises."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="Zone name; also the metric people_<name>.")
    polygon: PointList = Field(description="Vertices as [x, y] fractions (0..1) of frame width and height.")
    crowd_min_people: int | None = Field(
        default=None, ge=1, description="Crowd gathering: at least this many people..."
    )
    crowd_min_s: float = Field(default=10.0, ge=0, description="...for at least this many seconds.")
    restricted_hours: list[str] = Field(
        default_factory=list, description='Intrusion windows in local time, e.g. ["22:00-06:00"]; [] = never.'
    )
    intrusion_min_s: float = Field(default=1.0, ge=0, description="A person must be seen this long to raise intrusion.")
    loiter_s: float | None = Field(
        default=None, gt=0, description="Loitering: one track stays in the zone longer than this."
    )
    min_person_px: int | None = Field(
        default=None,
        ge=8,
        le=4320,
        description="Height (native pixels) of the smallest person to detect in this zone; None = the camera's.",
    )

    _check = field_validator("polygon")(_check_polygon)

    @field_validator("restricted_hours")
    @classmethod
    def _hours(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                HourWindow.parse(text)
            except ZoneConfigError as exc:
                raise ValueError(str(exc)) from exc
        return value


class PrivacyConfig(BaseModel):
    """The snapshot filter: privacy masks, face blurring and what to do when it fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    masks: list[PointList] = Field(
        default_factory=list, description="Polygons (0..1 fractions) burned in black on every snapshot."
    )
    on_failure: Literal["pixelate", "withhold"] = Field(
        default="pixelate", description="If the face filter fails: send a fully pixelated image, or none."
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Face detection taking longer than this counts as failed."
    )
    jpeg_quality: int = Field(default=80, ge=30, le=95, description="JPEG quality of snapshots.")
    max_side: int = Field(
        default=1280, ge=160, le=4096, description="Snapshots are scaled down to at most this many pixels."
    )
    cascade_dir: str | None = Field(
        default=None, description="Directory of the Haar cascade files (default: cv2.data)."
    )

    @field_validator("masks")
    @classmethod
    def _masks(cls, value: list[PointList]) -> list[PointList]:
        for points in value:
            _check_polygon(points)
        return value


class AnalyticsConfig(BaseModel):
    """Tuning of motion, people detection and tracking."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_width: int = Field(
        default=320, ge=160, le=1280, description="Motion and tamper checks run on frames scaled to this width."
    )
    min_person_px: int = Field(
        default=DEFAULT_MIN_PERSON_PX,
        ge=8,
        le=4320,
        description="Height (native pixels) of the smallest person to detect; sets how far searched regions scale.",
    )
    stream_height: int | None = Field(
        default=None,
        ge=16,
        le=4320,
        description="Native frame height, if known: lets check-config test zones against min_person_px.",
    )
    detect_interval_s: float = Field(
        default=0.2, ge=0, le=10, description="Run the people detector at most this often."
    )
    motion_min_area: float = Field(
        default=0.002, gt=0, lt=1, description="Smallest moving blob, as a fraction of the frame."
    )
    track_ttl_s: float = Field(default=2.0, gt=0, description="Forget a person not detected for this long.")
    clear_after_s: float = Field(
        default=5.0, ge=0, description="Zone events clear after their condition is false this long."
    )
    timezone: str = Field(default="UTC", description="IANA time zone for restricted hours.")
    opencv_threads: int = Field(default=1, ge=0, le=16, description="cv2.setNumThreads (0 = OpenCV default).")


class TamperConfig(BaseModel):
    """Thresholds of the tamper checks (covered, defocused, moved)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learn_s: float = Field(
        default=5.0, gt=0, description="Seconds of frames that set the sharpness and scene baseline."
    )
    check_interval_s: float = Field(default=0.5, gt=0, description="Run the tamper checks this often.")
    covered_brightness: float = Field(default=25.0, ge=0, le=255, description="Mean grey below this means covered...")
    covered_contrast: float = Field(default=6.0, ge=0, description="...or grey standard deviation below this.")
    defocus_ratio: float = Field(
        default=0.35, gt=0, lt=1, description="Sharpness below this share of the baseline = defocus."
    )
    moved_fraction: float = Field(
        default=0.04, gt=0, lt=1, description="Scene shift beyond this share of the width = moved."
    )
    min_s: float = Field(
        default=3.0, ge=0, description="A tamper condition must hold this long to raise, and fail to clear."
    )


class CameraConfigBase(DriverConfigBase):
    """Everything a camera pipeline needs besides its frame source."""

    interval_s: float = Field(default=10.0, gt=0, le=86_400, description="Seconds between polls of this driver.")
    zones: list[ZoneConfig] = Field(default_factory=list, description="Polygon zones and their events.")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Snapshot filter.")
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig, description="Detection tuning.")
    tamper: TamperConfig = Field(default_factory=TamperConfig, description="Tamper thresholds.")
    stream_timeout_s: float = Field(default=5.0, gt=0, description="No frame for this long raises stream_lost.")

    @model_validator(mode="after")
    def _unique_zones(self) -> CameraConfigBase:
        names = [z.name for z in self.zones]
        if len(names) != len(set(names)):
            raise ValueError("zone names must be unique")
        return self


class CameraConfig(CameraConfigBase):
    """The ``camera`` driver: a real stream through OpenCV VideoCapture."""

    type: Literal["camera"] = Field(default="camera", description="Driver key.")
    source: str = Field(description="rtsp://, http(s)://, a file path, or a USB device index such as '0'.")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Longest wait between reconnect attempts.")
    read_timeout_s: float = Field(default=5.0, gt=0, description="Open/read timeout passed to the capture backend.")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("source must not be empty")
        return value
