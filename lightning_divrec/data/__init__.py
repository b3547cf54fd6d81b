"""Datasets, splits, negative sampling and the shared ``RecDataModule``."""

from lightning_divrec.data.datamodule import RecDataModule
from lightning_divrec.data.interactions import Interactions, build_interactions
from lightning_divrec.data.sampling import NegativeSampler
from lightning_divrec.data.splits import Split, leave_one_out, random_ratio_split, ratio_split, time_cut_split

__all__ = [
    "Interactions",
    "NegativeSampler",
    "RecDataModule",
    "Split",
    "build_interactions",
    "leave_one_out",
    "random_ratio_split",
    "ratio_split",
    "time_cut_split",
]
