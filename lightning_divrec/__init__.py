"""lightning_divrec: recommenders that balance relevance and diversity, on PyTorch Lightning."""

__version__ = "0.1.0"
