"""Recompute the test metrics of a checkpoint.

    python evaluate.py ckpt_path=runs/<run>/checkpoints/best.ckpt
"""

import sys

from lightning_divrec.cli import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
