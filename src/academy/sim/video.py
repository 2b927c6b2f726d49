"""MP4 writing through PyAV (H.264, yuv420p: plays in any browser and video player)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import av
import numpy as np


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: int = 20) -> Path:
    """Write RGB frames (H, W, 3) uint8 to ``path``; returns the path. H and W must be even."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"no frames to write to {path}")
    h, w = first.shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in [first, *frames]:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
