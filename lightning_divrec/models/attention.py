"""Attention ranker: a causal transformer over each user's item history, trained on the next item.

Every position of a training window predicts the item that follows it, with
cross-entropy over the full catalogue (or a sampled softmax). Scoring reads
the user's history up to the evaluation point: training items for ``val``,
training plus validation items for ``test``, and ranks every item by the dot
product of its vector with the output at the last position. Item vectors are
the input embeddings (tied), optionally fused with frozen text embeddings of
the item titles, and the output may be split into several interests.

Legend: B batch, U users, I items, L max_length, D dim, M interests, P real positions.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from lightning_divrec.models.base import RankingModule
from lightning_divrec.models.components.interests import InterestPooling, route_to_target, score_across_interests
from lightning_divrec.models.components.transformer import SequenceTransformer

log = logging.getLogger(__name__)


class AttentionRankerModule(RankingModule):
    """SASRec-style next-item model over ``RecDataModule``'s sequence batches.

    Declares sequence batches in ``attach_data``: the data module then serves
    ``{"inputs": [B, L], "targets": [B, L]}`` windows (see
    ``lightning_divrec.data.sequences``), padding id ``I``.
    """

    def __init__(self, num_users: int, num_items: int, model_config: dict, ks: list[int], run_config: dict | None = None):
        super().__init__(num_users, num_items, model_config, ks, run_config)
        config = model_config
        self.padding_id = num_items
        self.encoder = SequenceTransformer(
            num_items,
            max_length=config["max_length"],
            dim=config["embedding_dim"],
            num_blocks=config["num_blocks"],
            heads=config["num_heads"],
            dropout=config["dropout"],
            norm=config["norm"],
        )
        num_interests = config.get("num_interests", 1)
        self.interests = InterestPooling(config["embedding_dim"], num_interests) if num_interests > 1 else None
        self._build_text_features(config)
        self.histories: dict[str, torch.Tensor] = {}
        self.excluded_items: dict = {}
        """Per stage, the ``CSR`` of items the evaluation removes from each user's ranking."""
        self.scoring_stage = "test"
        """History that ``score`` reads: ``val`` during validation, ``test`` otherwise."""
        self._cached_table: torch.Tensor | None = None

    def _build_text_features(self, config: dict) -> None:
        """Create the text projection (and the trainable encoder when asked); titles arrive in ``attach_data``."""
        self.text_projection: nn.Linear | None = None
        self.text_encoder = None
        self.item_titles: list[str] = []
        self.register_buffer("text_features", torch.empty(0), persistent=False)
        if config.get("text_model") is None:
            return
        from transformers import AutoConfig

        from lightning_divrec.models.components.text_encoder import TextEncoder, resolve_text_model

        if config.get("text_trainable", False):
            self.text_encoder = TextEncoder(config["text_model"], max_length=config["text_max_length"], trainable=True)
            text_dim = self.text_encoder.dim
        else:
            text_dim = AutoConfig.from_pretrained(resolve_text_model(config["text_model"])).hidden_size
        self.text_projection = nn.Linear(text_dim, config["embedding_dim"], bias=False)
        # Start small, so that training begins close to the id-only model.
        nn.init.normal_(self.text_projection.weight, std=0.1 * text_dim**-0.5)

    # ----- data --------------------------------------------------------------------------------

    def attach_data(self, datamodule) -> None:
        sequences = datamodule.use_sequence_batches(self.model_config["max_length"], self.model_config.get("windows", "all"))
        self.histories = sequences.histories
        # The items each stage removes from a user's ranking. The interest knob spreads the list over the rest.
        self.excluded_items = {stage: part.exclude for stage, part in getattr(datamodule, "stages", {}).items()}
        if self.text_projection is None:
            return
        self.item_titles = list(datamodule.interactions.item_titles)
        if self.text_encoder is None:
            from lightning_divrec.models.components.text_encoder import item_text_embeddings

            features = item_text_embeddings(
                self.item_titles,
                self.model_config["text_model"],
                cache_dir=self.model_config.get("text_cache_dir"),
                max_length=self.model_config["text_max_length"],
            )  # [I, D_text]
            self.text_features = features.to(self.text_projection.weight.device)

    # ----- item vectors ------------------------------------------------------------------------

    def item_table(self) -> torch.Tensor:
        """Return [I + 1, D] item vectors: id embedding plus projected title embedding, padding row last.

        The padding row is never attended or scored, so it needs no text part.
        """
        table = self.encoder.item_embedding.weight  # [I + 1, D]
        if self.text_projection is None:
            return table
        if self.text_encoder is not None:
            # NOTE: encodes every title at each call; fine for thousands of items, slow beyond.
            text = self.text_encoder(self.item_titles)  # [I, D_text]
        else:
            text = self.text_features
        projected = self.text_projection(text.to(table.dtype))  # [I, D]
        return table + F.pad(projected, (0, 0, 0, 1))

    def item_embeddings(self) -> torch.Tensor:
        table = self._cached_table if self._cached_table is not None else self.item_table().detach()
        return table[: self.num_items].float()

    # ----- training ----------------------------------------------------------------------------

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch["inputs"], batch["targets"]  # [B, L] each
        table = self.item_table()  # [I + 1, D]
        hidden = self.encoder(inputs, table)  # [B, L, D]
        real = inputs != self.padding_id  # [B, L]
        target_items = targets[real]  # [P]
        if self.interests is not None:
            interests = self.interests(hidden, real)[real]  # [B, L, M, D] -> [P, M, D]
            outputs = route_to_target(interests, table[target_items])  # [P, D]
        else:
            outputs = hidden[real]  # [P, D]
        loss = self._next_item_loss(outputs, target_items, table[: self.num_items])
        if batch_idx == 0 and self.current_epoch == 0:
            log.info("learning rate %.6g, %d windows per batch", self.learning_rate(), len(inputs))
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(inputs), sync_dist=True)
        return loss

    def _next_item_loss(self, outputs: torch.Tensor, targets: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Return the mean cross-entropy of the next items, computed in float32 outside autocast.

        ``model.loss=full`` scores every item; ``sampled`` scores the target
        against ``model.num_negatives`` items drawn uniformly once per batch,
        with a negative that equals the target masked out.

        Shapes: outputs [P, D], targets [P], items [I, D] -> scalar.
        """
        device_type = outputs.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            outputs, items = outputs.float(), items.float()
            if self.model_config.get("loss", "full") == "full":
                return F.cross_entropy(outputs @ items.T, targets)  # [P, I]
            negatives = torch.randint(0, self.num_items, (self.model_config["num_negatives"],), device=outputs.device)  # [N]
            positive_logits = (outputs * items[targets]).sum(-1, keepdim=True)  # [P, 1]
            negative_logits = outputs @ items[negatives].T  # [P, N]
            negative_logits = negative_logits.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
            logits = torch.cat([positive_logits, negative_logits], dim=1)  # [P, 1 + N]
            return F.cross_entropy(logits, torch.zeros_like(targets))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate(), weight_decay=self.model_config["weight_decay"])

    # ----- scoring -----------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self.scoring_stage = "val"
        super().on_validation_epoch_start()

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.scoring_stage = "test"

    def on_test_epoch_start(self) -> None:
        self.scoring_stage = "test"
        super().on_test_epoch_start()

    def prepare_scoring(self) -> None:
        with torch.no_grad():
            self._cached_table = self.item_table().detach()

    def finish_scoring(self) -> None:
        self._cached_table = None

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """Return the output at the last position of each user's history, [B] -> [B, M, D] (M = 1 without interests)."""
        if not self.histories:
            raise RuntimeError("AttentionRankerModule has no histories: run it through a Trainer with RecDataModule first")
        sequences = self.histories[self.scoring_stage][users.cpu()].to(users.device)  # [B, L]
        table = self._cached_table if self._cached_table is not None else self.item_table()
        hidden = self.encoder(sequences, table)  # [B, L, D]
        if self.interests is None:
            return hidden[:, -1:, :]
        real = sequences != self.padding_id
        return self.interests(hidden, real)[:, -1]  # [B, M, D]

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        vectors = self.user_vectors(users).float()  # [B, M, D]
        table = self._cached_table if self._cached_table is not None else self.item_table()
        interest_scores = vectors @ table[: self.num_items].float().T  # [B, M, D] @ [D, I] -> [B, M, I]
        if interest_scores.shape[1] == 1:
            return interest_scores[:, 0]
        excluded = None
        if self.scoring_stage in self.excluded_items:
            rows, items = self.excluded_items[self.scoring_stage].gather(users.cpu().numpy())
            excluded = torch.zeros(interest_scores.shape[0], self.num_items, dtype=torch.bool, device=users.device)
            excluded[torch.from_numpy(rows).to(users.device), torch.from_numpy(items).to(users.device)] = True
        return score_across_interests(interest_scores, self.model_config.get("interest_mix", 0.0), excluded)
