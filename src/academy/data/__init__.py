"""Academy's episode store: LeRobot v3.0 datasets on disk (see docs/data.md)."""

from academy.data.store import Dataset, DatasetError, EpisodeMeta, EpisodeWriter, filter_dataset, merge

__all__ = ["Dataset", "DatasetError", "EpisodeMeta", "EpisodeWriter", "filter_dataset", "merge"]
