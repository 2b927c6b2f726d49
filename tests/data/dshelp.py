"""Small datasets for the store tests."""

import numpy as np
from academy.data import Dataset, EpisodeMeta

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["a", "b", "c", "d"]},
    "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "next.done": {"dtype": "bool", "shape": [1], "names": None},
}
VIDEO = {"observation.images.overview": {"dtype": "video", "shape": [32, 48, 3], "names": ["height", "width", "channels"]}}


def random_episode(rng, T, video=False):
    frames = {
        "observation.state": rng.normal(size=(T, 4)).astype(np.float32),
        "action": rng.normal(size=(T, 2)).astype(np.float32),
        "next.reward": rng.random(T).astype(np.float32),
        "next.done": np.arange(T) == T - 1,
    }
    videos = None
    if video:  # smooth images (a moving gradient) so that lossy coding stays close
        yy, xx = np.mgrid[0:32, 0:48]
        videos = {"observation.images.overview": np.stack(
            [np.stack([(xx * 5 + t * 7) % 256, (yy * 7) % 256, np.full_like(xx, 40 + t)], -1) for t in range(T)]
        ).astype(np.uint8)}
    return frames, videos


def write_dataset(root, n=5, video=False, flush_every=2, seed=0):
    rng = np.random.default_rng(seed)
    ds = Dataset.create(root, 20, {**FEATURES, **(VIDEO if video else {})})
    written = []
    with ds.writer(flush_every=flush_every) as w:
        for e in range(n):
            frames, videos = random_episode(rng, 8 + e, video)
            task = "handover" if e % 2 == 0 else "sort_cells"
            meta = EpisodeMeta(task=task, outcome="success" if e < 3 else "failure", seed=e)
            w.add_episode(frames, meta, f"do {task}", videos)
            written.append((frames, videos, meta))
    return Dataset(root), written
