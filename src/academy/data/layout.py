"""LeRobot v3.0 on-disk layout: paths, defaults and the info.json template.

Matched field by field against LeRobot 0.4.4 (``lerobot/datasets/utils.py``,
``lerobot_dataset.py``); see docs/data.md for the table.
"""

from __future__ import annotations

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNK_SIZE = 1000  # max files per chunk folder
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_DIR = "data"
VIDEO_DIR = "videos"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = DATA_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = VIDEO_DIR + "/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"

DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILES)

# Academy's own per-episode columns in meta/episodes (LeRobot ignores columns it does not know)
SOURCES = ("expert", "human-video", "practice", "dream", "fleet", "correction")  # correction: a fleet failure redone
OUTCOMES = ("success", "failure", "unknown")
ACADEMY_COLUMNS = {
    "academy/task": "string",  # the task's registry name (the LeRobot task is its sentence)
    "academy/source": "string",
    "academy/robot_serial": "string",
    "academy/release": "string",
    "academy/outcome": "string",
    "academy/synthetic": "bool",
    "academy/seed": "int64",
    "academy/key": "string",  # fleet episodes: the robot's idempotency key
}


def chunk_file(file_number: int, chunks_size: int) -> tuple[int, int]:
    """The (chunk_index, file_index) of the n-th file written, chunks_size files per chunk."""
    return file_number // chunks_size, file_number % chunks_size


def new_info(fps: int, features: dict, robot_type: str, chunks_size: int = DEFAULT_CHUNK_SIZE) -> dict:
    has_video = any(f["dtype"] == "video" for f in features.values())
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": DEFAULT_DATA_FILE_SIZE_IN_MB,
        "video_files_size_in_mb": DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        "fps": fps,
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "features": {**features, **DEFAULT_FEATURES},
    }
