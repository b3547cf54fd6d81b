#!/usr/bin/env bash
# Create the virtual environment that runs RecBole 1.2.1 for the side-by-side
# benchmark, apart from the project's own environment.
#
#     bash benchmarks/recbole/setup_env.sh [VENV_DIR]
#
# VENV_DIR defaults to benchmarks/recbole/.venv (gitignored). The pins:
#   torch==2.13.0      the CPU build that this project's machines keep on disk,
#                      the same release as the project's own environment.
#   numpy<2            RecBole's config module uses np.float_, removed in NumPy 2.
#   scipy<1.13         LightGCN calls dok_matrix._update, removed in SciPy 1.13.
#   pandas<3           RecBole's dataset code predates pandas 3's string dtype
#                      and copy-on-write defaults.
#   colorlog==4.7.2, colorama==0.4.4   pinned exactly by RecBole's own metadata.
# recbole is installed with --no-deps so that ray, thop, plotly, tabulate and
# hyperopt stay out: they serve only RecBole's quick_start and hyperparameter
# search, which benchmarks/recbole/run_recbole.py does not import.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/.venv}"
python="${PYTHON:-python3}"

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet \
    "torch==2.13.0" \
    "numpy<2" \
    "scipy<1.13" \
    "pandas<3" \
    "colorlog==4.7.2" \
    "colorama==0.4.4" \
    tqdm scikit-learn pyyaml texttable tensorboard psutil
"$venv/bin/pip" install --quiet --no-deps "recbole==1.2.1"
"$venv/bin/python" -c "import recbole, numpy, scipy, torch; print('recbole', recbole.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'torch', torch.__version__)"
