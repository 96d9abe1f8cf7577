"""How ``ffdv --help`` reads: defaults shown, examples under every command, one formatter for all.

Applied once to the whole parser (``polish``) so every command, including those added later,
follows the same conventions; ``tests/engine/test_cli_help.py`` checks them on every sub-command.
"""

from __future__ import annotations

import argparse

# An example or two per command, shown under its options (`ffdv COMMAND --help`).
EXAMPLES = {
    "train": """examples:
  ffdv train --data sample_data --model resnet18 --epochs 10
  ffdv train --config runs/NAME/config.toml --lr 0.0005 --name again    repeat a run with one change
  ffdv train --data DATA --model efficientnet_b0 --queue                queue it (ffdv queue run starts it)""",
    "runs": """examples:
  ffdv runs
  ffdv runs --runs /scratch/runs""",
    "watch": """examples:
  ffdv watch resnet18-1
  ffdv watch runs/resnet18-1 --from-end""",
    "pause": "example:\n  ffdv pause resnet18-1",
    "resume": "example:\n  ffdv resume resnet18-1",
    "stop": "example:\n  ffdv stop resnet18-1 --wait 120",
    "checkpoint": "example:\n  ffdv checkpoint resnet18-1",
    "evaluate": """examples:
  ffdv evaluate --checkpoint runs/NAME/checkpoints/best.safetensors --data sample_data --split val
  ffdv evaluate --checkpoint A.safetensors B.safetensors --data sample_data --split val --perturb standard""",
    "predict": """example:
  ffdv predict --checkpoint runs/NAME/checkpoints/best.safetensors --data sample_data --split test \\
      --out submission.csv""",
    "scan": """examples:
  ffdv scan sample_data
  ffdv scan sample_data --leakage --out leakage/""",
    "split": """example:
  ffdv split sample_data --val 0.2 --out sample_data-split""",
    "queue hold": "example:\n  ffdv queue hold lr0.003-resnet18 --runs runs    (ffdv queue release ... lets it go)",
    "queue release": "example:\n  ffdv queue release lr0.003-resnet18 --runs runs",
    "queue cancel": "example:\n  ffdv queue cancel lr0.003-resnet18 --runs runs",
    "queue move": "examples:\n  ffdv queue move lr0.003-resnet18 1 --runs runs    next to start\n"
                  "  ffdv queue move lr0.003-resnet18 99 --runs runs   last",
    "queue run": """examples:
  ffdv queue run --runs runs --until-empty         start queued runs in turn, exit when all are done
  ffdv queue run --runs runs --slots 2 --background two small runs per GPU, detached""",
    "calibrate": """examples:
  ffdv calibrate --checkpoint runs/NAME --data sample_data --split val
  ffdv predict --checkpoint runs/NAME --data sample_data --split test --calibrated --threshold fpr:0.01""",
    "explain": """examples:
  ffdv explain --checkpoint runs/NAME --data sample_data --split val --filter misclassified --limit 8
  ffdv explain --checkpoint runs/NAME --data sample_data/valset --images a.jpg,b.jpg --method hirescam""",
    "hard": """examples:
  ffdv hard runs/NAME --since 3                  wrong in every validation from epoch 3 on
  ffdv hard runs/NAME --flip-flops 2/4 --out hard.csv    called differently in 2 of the last 4
  ffdv hard runs/NAME/evaluations/MATRIX --disagree   the checkpoints of a matrix disagree""",
    "models": """examples:
  ffdv models '*efficientnet*'
  ffdv models --json""",
}


class HelpFormatter(argparse.HelpFormatter):
    """Keeps the line breaks of text written on several lines (examples); adds ``(default: X)`` where it says something."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not text or "default" in text or "%(default)" in text or default in (None, False, "", argparse.SUPPRESS)
                or action.option_strings == [] or isinstance(action, argparse._HelpAction | argparse._VersionAction)):
            return action.help
        return f"{text} (default: %(default)s)"


def polish(parser: argparse.ArgumentParser, path: str = "") -> None:
    """The one formatter for ``parser`` and every sub-command under it; the examples where a command has none."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                key = f"{path} {name}".strip()
                if not command.epilog and key in EXAMPLES:
                    command.epilog = EXAMPLES[key]
                polish(command, key)
