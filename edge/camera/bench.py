"""``gridsentinel bench camera``: full-pipeline fps at 640x480 on one thread, and CPU share at 10 fps."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

#: A typical camera stream rate; frame timestamps advance at this rate during the fps run.
STREAM_FPS = 25.0
TARGET_FPS = 100.0
TARGET_CPU_SHARE = 0.15


def _frames(seconds: float, fps: float) -> list[tuple[Any, int]]:
    from simulators.camera import SCENES, SceneRenderer

    renderer = SceneRenderer(SCENES["busy"], seed=0)
    frames = []
    for i in range(int(seconds * fps)):
        t = i / fps
        image = renderer.render(t % SCENES["busy"].duration_s)
        frames.append((image, 1_700_000_000_000 + round(t * 1000)))
    return frames


def _pipeline() -> Any:
    from edge.camera.config import CameraConfigBase, ZoneConfig
    from edge.camera.pipeline import CameraPipeline

    zone = ZoneConfig(name="square", polygon=[(0, 0.6), (1, 0.6), (1, 1), (0, 1)], crowd_min_people=5, loiter_s=600)
    return CameraPipeline(CameraConfigBase.model_validate({"zones": [zone]}))


def measure(fps_seconds: float = 30.0, cpu_seconds: float = 10.0, stream_fps: float = STREAM_FPS) -> dict[str, Any]:
    """Run both measurements and return the result object."""
    import threading

    import cv2

    cv2.setNumThreads(1)
    frames = _frames(fps_seconds, stream_fps)  # rendered up front: only the pipeline is timed
    pipeline = _pipeline()
    people = 0
    started = time.perf_counter()
    for image, ts in frames:
        people = max(people, int(pipeline.process(image, ts).metrics["people"]))
    elapsed = time.perf_counter() - started
    pipeline_fps = len(frames) / elapsed

    live = _frames(cpu_seconds, 10.0)
    pipeline = _pipeline()
    pause = threading.Event()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i, (image, ts) in enumerate(live):
        pipeline.process(image, ts)
        due = wall0 + (i + 1) / 10.0
        delay = due - time.perf_counter()
        if delay > 0:
            pause.wait(delay)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    cpu_share = cpu / wall
    return {
        "bench": "camera",
        "resolution": "640x480",
        "threads": 1,
        "frames": len(frames),
        "stream_fps": stream_fps,
        "max_people": people,
        "pipeline_fps": round(pipeline_fps, 1),
        "latency_ms": round(1000.0 / pipeline_fps, 2),
        "cpu_share_10fps": round(cpu_share, 4),
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 2),
        "target_pipeline_fps": TARGET_FPS,
        "target_cpu_share_10fps": TARGET_CPU_SHARE,
        "pass": pipeline_fps >= TARGET_FPS and cpu_share <= TARGET_CPU_SHARE,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print a table or JSON."""
    result = measure(args.seconds, args.cpu_seconds, args.stream_fps)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"camera pipeline, 640x480, 1 OpenCV thread, 0-3 walking people, {args.stream_fps:g} fps stream timestamps")
    print(f"{'measure':<28}{'value':>12}{'target':>12}")
    print(f"{'pipeline fps':<28}{result['pipeline_fps']:>12}{'>= ' + str(TARGET_FPS):>12}")
    print(f"{'latency per frame (ms)':<28}{result['latency_ms']:>12}{'':>12}")
    print(f"{'CPU share of a core @10 fps':<28}{result['cpu_share_10fps']:>12}{'<= ' + str(TARGET_CPU_SHARE):>12}")
    print(f"{'people seen (max)':<28}{result['max_people']:>12}{'':>12}")
    print(f"result: {'PASS' if result['pass'] else 'FAIL'}")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=30.0, help="scene seconds for the fps run (default 30)")
    parser.add_argument("--cpu-seconds", type=float, default=10.0, help="seconds of the 10 fps run (default 10)")
    parser.add_argument(
        "--stream-fps", type=float, default=STREAM_FPS, help="frame timestamps of the fps run (default 25)"
    )
    parser.set_defaults(func=run)
