"""MP4 through PyAV: one writer that appends clips (episodes) to a file, and a reader.

Episodes share a file the way LeRobot v3.0 stores them: frames follow each other at a fixed
frame rate, and an episode is the time span [from_timestamp, to_timestamp) of the file.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

DEFAULT_CODEC = "libx264"  # H.264 plays in any browser and player


class Mp4Writer:
    """Append RGB frames (H, W, 3) uint8 to one mp4 at ``fps``; H and W must be even.

    ``codec`` "libsvtav1" (LeRobot's default) or "libx264"; ``gop`` keyframe interval in frames
    (2, as LeRobot uses, keeps random access cheap).
    """

    def __init__(self, path: str | Path, fps: int, codec: str = DEFAULT_CODEC, gop: int | None = None, crf: int = 30):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps, self.codec, self.gop, self.crf = fps, codec, gop, crf
        self.frames = 0
        self._container = None
        self._stream = None

    def _open(self, h: int, w: int) -> None:
        if h % 2 or w % 2:
            raise ValueError(f"frame size {h}x{w} for {self.path}: height and width must be even")
        self._container = av.open(str(self.path), mode="w", format="mp4")
        options = {"crf": str(self.crf)}
        if self.gop:
            options["g"] = str(self.gop)
        stream = self._container.add_stream(self.codec, rate=self.fps, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, self.fps)
        self._stream = stream

    def add(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame for {self.path} must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self._stream is None:
            self._open(*frame.shape[:2])
        elif frame.shape[:2] != (self._stream.height, self._stream.width):
            raise ValueError(
                f"frame {frame.shape[:2]} for {self.path} differs from the first ({self._stream.height}, {self._stream.width})"
            )
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts, vf.time_base = self.frames, Fraction(1, self.fps)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        if self._container is None:
            raise ValueError(f"no frames were written to {self.path}")
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self.path

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, *exc) -> None:
        if self._container is not None:
            self.close()


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: int = 20) -> Path:
    """Write RGB frames (H, W, 3) uint8 to ``path``; returns the path. H and W must be even."""
    writer = Mp4Writer(path, fps)
    for frame in frames:
        writer.add(frame)
    return writer.close()


def iter_frames(path: str | Path, start: float = 0.0, stop: float | None = None) -> Iterator[np.ndarray]:
    """Decode, one by one, the frames whose timestamps lie in [start, stop), as (H, W, 3) uint8.

    A file that is missing, not a video, or cut short raises ValueError naming it.
    """
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            if start > 0:
                container.seek(int(start / tb), stream=stream, backward=True, any_frame=False)
            eps = 1e-4
            for frame in container.decode(stream):
                t = float(frame.pts * tb)
                if t < start - eps:
                    continue
                if stop is not None and t >= stop - eps:
                    break
                yield frame.to_ndarray(format="rgb24")
    except (av.error.InvalidDataError, av.error.FileNotFoundError, av.error.EOFError, IndexError) as e:
        raise ValueError(f"{path}: not a readable video ({e})") from e


def read_frames(path: str | Path, start: float = 0.0, stop: float | None = None) -> np.ndarray:
    """Decode the frames whose timestamps lie in [start, stop) as (N, H, W, 3) uint8."""
    out = list(iter_frames(path, start, stop))
    if not out:
        raise ValueError(f"{path}: no frames between {start:.3f} s and {stop} s")
    return np.stack(out)
