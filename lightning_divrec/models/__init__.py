"""Recommenders: LightningModules over plain ``nn.Module`` components."""

from lightning_divrec.models.attention import AttentionRankerModule
from lightning_divrec.models.base import RankingModule
from lightning_divrec.models.distillation import DistillationModule
from lightning_divrec.models.graphsage import GraphSAGEModule
from lightning_divrec.models.popularity import PopularityModule

MODELS: dict[str, type[RankingModule]] = {
    "graphsage": GraphSAGEModule,
    "popularity": PopularityModule,
    "attention": AttentionRankerModule,
    "distill": DistillationModule,
}
"""Model classes by the ``model.name`` config value."""

__all__ = ["MODELS", "AttentionRankerModule", "DistillationModule", "GraphSAGEModule", "PopularityModule", "RankingModule"]
