"""How far to scale a searched region so the smallest person asked for fills a HOG window (pure).

OpenCV's default people detector scans a 64x128 window in which the person stands about
96 px tall, and its image pyramid only ever shrinks the image. A person shorter than that
at the resolution the detector sees is invisible, so the pipeline scales each region it
searches by ``HOG_PERSON_PX / min_person_px`` (at the stream's native resolution): up for
small people, down for big ones, which is also what keeps 1080p streams cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.camera.config import CameraConfigBase, ZoneConfig

#: Height of a person inside the 64x128 window of OpenCV's default HOG people detector.
HOG_PERSON_PX = 96.0
#: Upscaling beyond this invents no detail, only cost: HOG then mostly sees blur.
MAX_UPSCALE = 2.0
#: Downscaling beyond this leaves too few cells for a reliable HOG window.
MIN_SCALE = 0.25
#: The smallest person any setting can reach (48 px).
SMALLEST_PERSON_PX = HOG_PERSON_PX / MAX_UPSCALE

#: A normalised box (x0, y0, x1, y1) in 0..1 frame fractions.
Extent = tuple[float, float, float, float]


def detect_scale(min_person_px: float) -> float:
    """Factor applied to native pixels so a person ``min_person_px`` tall becomes detectable."""
    return max(MIN_SCALE, min(MAX_UPSCALE, HOG_PERSON_PX / float(min_person_px)))


def zone_extent(zone: ZoneConfig) -> Extent:
    """Bounding box of a zone polygon, in frame fractions."""
    xs = [p[0] for p in zone.polygon]
    ys = [p[1] for p in zone.polygon]
    return (min(xs), min(ys), max(xs), max(ys))


def _overlaps(a: Extent, b: Extent) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(inner: Extent, outer: Extent) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


class ScalePlan:
    """The smallest person to look for in each part of the frame: the camera's value, or a zone's."""

    def __init__(self, camera_min_px: int, zones: Sequence[ZoneConfig]) -> None:
        self.camera_min_px = camera_min_px
        self._zones = [(zone_extent(z), z.min_person_px) for z in zones if z.min_person_px is not None]
        #: The smallest person looked for anywhere in the frame.
        self.smallest_px = min([camera_min_px, *(px for _extent, px in self._zones)])

    def min_person_px(self, region: Extent) -> int:
        """Smallest person height to find in ``region`` (frame fractions).

        Zones that set their own value govern the part of the frame they cover; a region
        reaching outside all of them also needs the camera's value. The smallest applies,
        so a region spanning a far and a near zone is searched finely enough for both.
        """
        values = [px for extent, px in self._zones if _overlaps(region, extent)]
        if not any(_inside(region, extent) for extent, _px in self._zones):
            values.append(self.camera_min_px)
        return min(values)


def geometry_warnings(config: CameraConfigBase) -> list[str]:
    """Why this camera or its zones cannot meet their ``min_person_px`` (empty when they can)."""
    warnings: list[str] = []
    an = config.analytics
    height = an.stream_height
    wanted: list[tuple[str, int, Extent]] = [("camera", an.min_person_px, (0.0, 0.0, 1.0, 1.0))]
    wanted += [(f"zone {z.name}", z.min_person_px or an.min_person_px, zone_extent(z)) for z in config.zones]
    for label, px, extent in wanted:
        if px < SMALLEST_PERSON_PX:
            warnings.append(
                f"{label}: min_person_px {px} is below what the detector can reach "
                f"({SMALLEST_PERSON_PX:.0f} px at {MAX_UPSCALE:g}x upscaling); smaller people will be missed"
            )
        if height is None:
            continue
        if px > height:
            warnings.append(f"{label}: min_person_px {px} is taller than the frame ({height} px)")
        elif label != "camera" and extent[3] * height < px:
            # A person is placed by the foot point: standing on the zone's lowest edge,
            # someone min_person_px tall would reach above the top of the frame.
            warnings.append(
                f"{label}: its lowest point is {extent[3] * height:.0f} px below the top of the frame, "
                f"so no person {px} px tall can stand in it fully in view"
            )
    return warnings
