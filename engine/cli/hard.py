"""``ffdv hard``: a run's hard examples (wrong since epoch k, flip-flops) as a CSV, from its validations."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.contract.errors import DataError
from engine.contract.text import printable


def add_commands(sub) -> dict:
    p = sub.add_parser("hard", help="a run's hard examples: wrong since epoch k, or flip-flops, as a CSV")
    p.add_argument("run", type=Path, help="a run folder (its predictions/epoch-NNN.csv); with --disagree, a matrix folder")
    p.add_argument("--since", type=int, help="images called wrongly in every validation from this epoch on")
    p.add_argument("--flip-flops", metavar="M/N",
                   help="images called differently from the validation before in at least M of the last N")
    p.add_argument("--disagree", action="store_true",
                   help="a matrix's images on which its checkpoints do not all make the same call")
    p.add_argument("--dataset", help="--disagree: which of the matrix's datasets (default its first)")
    p.add_argument("--perturbation", help="--disagree: under which perturbation (default none: the clean images)")
    p.add_argument("--threshold", type=float, default=0.5, help="called fake above this score (default 0.5)")
    p.add_argument("--out", type=Path, help="the CSV (img_name,target,score,reason; default RUN/hard-examples.csv)")
    return {"hard": cmd_hard}


def _flip_flops(value: str) -> tuple[int, int]:
    try:
        m, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise DataError(f"--flip-flops {value!r}: write it as M/N, e.g. 2/4 (2 of the last 4 validations)") from None
    return m, n


def cmd_hard(args: argparse.Namespace) -> int:
    import pandas as pd

    from engine.data.hard_examples import flip_flops, hard_frame, score_table, write_hard_examples, wrong_since

    if args.disagree:
        from engine.data.hard_examples import models_disagree

        frame = models_disagree(args.run, args.dataset, args.perturbation, args.threshold)
        out = write_hard_examples(frame, args.out or Path(args.run) / "disagree.csv")
        print(printable(f"{len(frame)} images on which the models disagree: wrote {out}", 1000))
        return 0
    if args.since is None and args.flip_flops is None:
        raise DataError("ffdv hard: say which hard examples: --since K, --flip-flops M/N (or both), or --disagree")
    scores, targets = score_table(args.run)
    parts = []
    if args.since is not None:
        names = wrong_since(scores, targets, args.since, args.threshold)
        parts.append(hard_frame(scores, targets, names, f"wrong since epoch {args.since}"))
    if args.flip_flops is not None:
        m, n = _flip_flops(args.flip_flops)
        names = flip_flops(scores, m, n, args.threshold)
        parts.append(hard_frame(scores, targets, names, f"flip-flop {m}/{n}"))
    frame = pd.concat(parts).drop_duplicates("img_name")
    out = write_hard_examples(frame, args.out or Path(args.run) / "hard-examples.csv")
    print(printable(f"{len(frame)} hard examples of {len(scores)} images ({len(scores.columns)} validations): "
                    f"wrote {out}", 1000))
    return 0
