"""``divrec-slurm``: render an sbatch script from a template in ``slurm/``, check its task layout, submit it.

The template's ``#SBATCH`` lines for ``--nodes``, ``--ntasks-per-node`` and
``--gpus-per-node`` are rewritten from the composed configuration
(``trainer.num_nodes``, ``trainer.devices``, ``trainer.accelerator``), so
those counts are stated once. Other sbatch options come from the template or
from ``--sbatch KEY=VALUE``. The layout that results is checked with the same
rules that ``train`` applies inside the job, and the command-line overrides
are written into the script's ``srun`` line, so the rendered file records
exactly what runs.

    divrec-slurm --template train trainer.devices=2 data.batch_size=4096 --dry-run
    divrec-slurm --template train --sbatch partition=gpu --sbatch time=08:00:00 seed=3
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from lightning_divrec.config import ConfigError, load_evaluate_config, load_train_config
from lightning_divrec.training.run_dir import timestamp, write_text_atomic
from lightning_divrec.training.slurm_env import SlurmLayout, layout_problems

log = logging.getLogger(__name__)

SLURM_DIR_ENV = "DIVREC_SLURM_DIR"

_DIRECTIVE = re.compile(r"^#SBATCH\s+--(?P<key>[A-Za-z0-9-]+)(?:[=\s]\s*(?P<value>\S+))?")
_ENTRY_POINTS = ("divrec-train", "divrec-evaluate")

USAGE_EPILOG = """\
Templates (files in {template_dir}): {templates}
Overrides are the same group=choice and dotted.key=value arguments that
divrec-train takes; they are written into the script's srun line.
"""


@dataclass
class RenderedScript:
    """An sbatch script ready to submit, with the layout that was checked."""

    text: str
    """The whole script."""

    layout: SlurmLayout
    """Nodes, tasks per node and GPUs per node requested by the script."""

    entry_point: str
    """``divrec-train`` or ``divrec-evaluate``: the command of the srun line."""


def default_template_dir() -> Path:
    """Return the ``slurm/`` folder: ``$DIVREC_SLURM_DIR``, else the one beside the package."""
    if os.environ.get(SLURM_DIR_ENV):
        return Path(os.environ[SLURM_DIR_ENV]).expanduser()
    return Path(__file__).resolve().parents[1] / "slurm"


def find_template(name: str) -> Path:
    """Return the template file that ``name`` gives: a path, or a name in the template folder."""
    as_path = Path(name).expanduser()
    if as_path.is_file():
        return as_path
    template_dir = default_template_dir()
    candidate = template_dir / f"{name}.sbatch"
    if candidate.is_file():
        return candidate
    available = ", ".join(sorted(path.stem for path in template_dir.glob("*.sbatch"))) or "none"
    raise FileNotFoundError(
        f"sbatch template {name!r} not found (neither a file nor {candidate}); "
        f"choose one of: {available}, or set {SLURM_DIR_ENV} to the folder of your templates"
    )


def render(
    template: str,
    overrides: Sequence[str] = (),
    sbatch_options: Sequence[str] = (),
    gpus_per_node: int | None = None,
    source: str = "template",
    config_dir: str | Path | None = None,
) -> RenderedScript:
    """Render ``template`` (the text of an sbatch script) for the configuration that ``overrides`` give.

    Raises ``ConfigError`` naming every disagreement between the sbatch
    layout and ``trainer.devices``/``trainer.num_nodes``/``trainer.accelerator``.
    """
    entry_point, fixed_overrides = _srun_overrides(template, source)
    all_overrides = [*fixed_overrides, *overrides]
    if entry_point == "divrec-evaluate":
        evaluate_cfg = load_evaluate_config(all_overrides, config_dir)
        devices, num_nodes, accelerator = evaluate_cfg.devices, 1, evaluate_cfg.accelerator
    else:
        train_cfg = load_train_config(all_overrides, config_dir)
        devices, num_nodes = train_cfg.trainer.devices, train_cfg.trainer.num_nodes
        accelerator = train_cfg.trainer.accelerator

    rendered_gpus = gpus_per_node
    if rendered_gpus is None and accelerator == "gpu":
        rendered_gpus = devices
    directives: dict[str, str | None] = {
        "nodes": str(num_nodes),
        "ntasks-per-node": str(devices),
        "gpus-per-node": None if rendered_gpus is None else str(rendered_gpus),
    }
    user_directives = dict(_parse_sbatch_option(option) for option in sbatch_options)
    if "gpu" in (user_directives.get("gres") or "") and "gpus-per-node" not in user_directives:
        # GPUs requested as a generic resource: no second request per node.
        directives["gpus-per-node"] = None
    directives.update(user_directives)
    text = _rewrite_directives(template, directives)

    layout = _layout_of(text)
    problems = layout_problems(layout, devices, num_nodes, accelerator)
    if problems:
        raise ConfigError(problems, f"sbatch layout of {source}")
    if overrides:
        text = _append_overrides(text, overrides, source)
    return RenderedScript(text=text, layout=layout, entry_point=entry_point)


def job_environment() -> dict[str, str]:
    """Return this process's environment without the variables that tie a job to this process.

    sbatch copies the submitting environment into the job. ``WANDB_SERVICE``
    points at the W&B service of the process that set it (a notebook, or a
    test run that trained in-process). A job that inherits it registers its
    run in that service, so after a requeue the restarted job finds its own
    run id still open there and W&B rejects it as in use.
    """
    return {name: value for name, value in os.environ.items() if name != "WANDB_SERVICE"}


def submit(script: Path, extra_args: Sequence[str] = ()) -> str:
    """Submit ``script`` with ``sbatch --parsable`` and return the job id."""
    command = ["sbatch", "--parsable", *extra_args, str(script)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=job_environment())
    except FileNotFoundError:
        raise FileNotFoundError(
            "sbatch not found; run divrec-slurm on a machine with the Slurm client, or pass --dry-run"
        ) from None
    if result.returncode != 0:
        raise RuntimeError(f"sbatch {script} failed with exit status {result.returncode}: {result.stderr.strip()}")
    # --parsable prints "<job id>" or "<job id>;<cluster>".
    return result.stdout.strip().split(";", 1)[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``divrec-slurm``; return the process exit code."""
    parser = _parser()
    args = parser.parse_intermixed_args(argv)
    try:
        template_path = find_template(args.template)
        rendered = render(
            template_path.read_text(encoding="utf-8"),
            args.overrides,
            args.sbatch,
            gpus_per_node=args.gpus_per_node,
            source=str(template_path),
        )
        if args.dry_run and args.output is None:
            print(rendered.text, end="")
            return 0
        script = Path(args.output) if args.output else _default_script_path(template_path)
        write_text_atomic(script, rendered.text)
        if args.dry_run:
            print(f"sbatch script written to {script}; not submitted (--dry-run)")
            return 0
        job_id = submit(script)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"submitted Slurm job {job_id}: {script}")
    return 0


def _parser() -> argparse.ArgumentParser:
    template_dir = default_template_dir()
    templates = ", ".join(sorted(path.stem for path in template_dir.glob("*.sbatch"))) or "none found"
    parser = argparse.ArgumentParser(
        prog="divrec-slurm",
        description="Render an sbatch script from a template and the configuration, check its task layout, submit it.",
        epilog=USAGE_EPILOG.format(template_dir=template_dir, templates=templates),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--template", default="train", help="template name in the template folder, or a path (default: train)")
    parser.add_argument(
        "--sbatch", action="append", default=[], metavar="KEY=VALUE",
        help="set an sbatch option, long name without dashes (partition=gpu, time=08:00:00); repeatable",
    )
    parser.add_argument(
        "--gpus-per-node", type=int, default=None,
        help="GPUs to request per node (default: trainer.devices when trainer.accelerator=gpu, none otherwise)",
    )
    parser.add_argument("--output", default=None, help="file to write the rendered script to")
    parser.add_argument("--dry-run", action="store_true", help="print (or, with --output, write) the script; do not submit")
    parser.add_argument("overrides", nargs="*", help="configuration overrides, as for divrec-train")
    return parser


def _default_script_path(template_path: Path) -> Path:
    return Path("runs") / "sbatch" / f"{template_path.stem}-{timestamp()}.sbatch"


def _parse_sbatch_option(option: str) -> tuple[str, str | None]:
    """Split ``KEY=VALUE`` (or a bare ``KEY`` flag) of ``--sbatch``; reject short and dashed forms."""
    key, has_value, value = option.lstrip("-").partition("=")
    if not re.fullmatch(r"[a-z][a-z0-9-]*", key) or (has_value and not value):
        raise ValueError(f"--sbatch {option!r}: expected KEY=VALUE with sbatch's long option name, for example partition=gpu")
    return key, value if has_value else ""


def _rewrite_directives(template: str, directives: dict[str, str | None]) -> str:
    """Set, replace or (value None) remove the ``#SBATCH --key`` lines of ``template``."""
    lines = template.splitlines()
    remaining = dict(directives)
    output: list[str] = []
    last_directive = -1
    for line in lines:
        match = _DIRECTIVE.match(line)
        if match and match.group("key") in directives:
            key = match.group("key")
            value = remaining.pop(key, None)
            if value is not None:
                output.append(_directive_line(key, value))
                last_directive = len(output) - 1
            continue
        output.append(line)
        if match:
            last_directive = len(output) - 1
    added = [_directive_line(key, value) for key, value in remaining.items() if value is not None]
    if added and last_directive < 0:
        # No #SBATCH line yet: directives must follow the shebang line.
        last_directive = 0 if output and output[0].startswith("#!") else -1
    output[last_directive + 1:last_directive + 1] = added
    return "\n".join(output) + "\n"


def _directive_line(key: str, value: str) -> str:
    return f"#SBATCH --{key}={value}" if value else f"#SBATCH --{key}"


def _layout_of(text: str) -> SlurmLayout:
    """Read the task layout that the ``#SBATCH`` lines of ``text`` request."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _DIRECTIVE.match(line)
        if match:
            values[match.group("key")] = match.group("value") or ""
    gpus = _count(values.get("gpus-per-node"))
    gres = values.get("gres", "")
    gres_gpu = re.search(r"(?:^|,)gpu(?::[^,:]+)?:(\d+)", gres)
    if gpus is None and gres_gpu:
        gpus = int(gres_gpu.group(1))
    nodes = _count(values.get("nodes"))
    ntasks_per_node = _count(values.get("ntasks-per-node"))
    ntasks = _count(values.get("ntasks"))
    if ntasks is None and nodes is not None and ntasks_per_node is not None:
        ntasks = nodes * ntasks_per_node
    return SlurmLayout(nodes=nodes, ntasks_per_node=ntasks_per_node, ntasks=ntasks, gpus_per_node=gpus)


def _count(value: str | None) -> int | None:
    """Parse a count such as ``4``, ``a100:4`` or a node range ``2-2``; None when absent."""
    if not value:
        return None
    head = value.rsplit(":", 1)[-1].split("-", 1)[0]
    if not head.isdigit():
        raise ValueError(f"sbatch value {value!r} is not a count; give a whole number such as 2")
    return int(head)


def _srun_command(template: str, source: str) -> tuple[int, int, list[str]]:
    """Return the first and last line index of the srun command (with its continuations) and its words."""
    lines = template.splitlines()
    for start, line in enumerate(lines):
        words = line.split()
        if "srun" not in words[:2]:
            continue
        end = start
        while lines[end].rstrip().endswith("\\") and end + 1 < len(lines):
            end += 1
        command = " ".join(part.rstrip().rstrip("\\") for part in lines[start:end + 1])
        return start, end, shlex.split(command, comments=True)
    raise ValueError(f"{source}: no line starting with srun (or exec srun); a template needs exactly one")


def _srun_overrides(template: str, source: str) -> tuple[str, list[str]]:
    """Return the entry point of the srun line and the overrides that the template passes to it.

    Words that use a shell variable (``trainer.devices=${SLURM_NTASKS_PER_NODE}``)
    are skipped: Slurm sets them, and the rendered layout checks them.
    """
    _, _, words = _srun_command(template, source)
    entry = next((index for index, word in enumerate(words) if word in _ENTRY_POINTS), None)
    if entry is None:
        raise ValueError(f"{source}: the srun line runs neither {' nor '.join(_ENTRY_POINTS)}")
    overrides = [word for word in words[entry + 1:] if "=" in word and "$" not in word]
    return words[entry], overrides


def _append_overrides(text: str, overrides: Sequence[str], source: str) -> str:
    """Insert ``overrides`` before the ``"$@"`` of the srun line, or at its end."""
    start, end, _ = _srun_command(text, source)
    lines = text.splitlines()
    quoted = shlex.join(overrides)
    last = lines[end]
    if '"$@"' in last:
        lines[end] = last.replace('"$@"', f'{quoted} "$@"', 1)
    else:
        lines[end] = f"{last} {quoted}"
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
