"""Train a recommender: ``python train.py [group=choice ...] [dotted.key=value ...]``.

One CPU process (the default)::

    python train.py

One GPU with bf16 mixed precision::

    python train.py trainer=gpu

Two CPU processes over gloo DDP, to debug distributed code anywhere::

    python train.py trainer=ddp_sim

``python train.py --help`` lists the config groups; ``--print-config`` prints
the composed configuration without training.
"""

import sys

from lightning_divrec.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
