"""``ffdv models``: timm's model names, for the new-run form's completion and for people."""

from __future__ import annotations

import argparse
import json


def add_commands(sub) -> dict:
    models = sub.add_parser("models", help="list timm model names (optionally matching a pattern like '*efficientnet*')")
    models.add_argument("pattern", nargs="?", default="", metavar="PATTERN",
                        help="a shell-style pattern such as '*efficientnet*' (default: every name)")
    models.add_argument("--json", action="store_true", help="as a JSON list")
    return {"models": cmd_models}


def cmd_models(args: argparse.Namespace) -> int:
    import timm

    pattern = args.pattern or ""
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    names = timm.list_models(pattern) if pattern else timm.list_models()
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0
