"""Which training recipe generalises: validation AUC against test AUC on unseen photographs and an unseen forgery family.

On a source-disjoint dataset (the bundled sample data: its validation and test photographs never
appear in training, and half of its test fakes are of a family no other split has, as recorded in
sample_data/sources.json), every recipe trains the same model at the same size for the same number
of epochs; its best checkpoint (chosen on validation AUC, as the workbench does) is then evaluated
on the test split. Reported per recipe: best validation AUC, test AUC on unseen photographs (test
reals against test fakes of the known families), test AUC on the unseen family (test reals against
copy-move fakes), and minutes.

    python bench/bench_quality.py [--data sample_data] [--recipes rgb,default,native+srm,...] [--epochs 8]
                                  [--model resnet10t] [--img-size 64] [--workers 0]

With ``--families DIR`` (made by scripts/make_family_data.py when DIR does not exist yet) it is the
unseen-family benchmark instead: every recipe trains on the known families (splice, upsampling,
re-noising) once per ``--seeds``, and its best checkpoint is evaluated on unseen photographs with the
known families (``test-seen``) and on each family absent from training (copy-move, a liquify-style warp,
a splice through a low-quality JPEG); reported per recipe and seed, with the mean over unseen families.

With ``--families DIR --leave-one-out all`` (or a comma-separated list of families) it is the
leave-one-family-out rotation: for each family F of the six, a fold DIR/leave-out-F trains on the
five others and tests on unseen photographs with them (``test-seen``) and with F alone; reported per
recipe, seed and fold, then per recipe the mean over folds of the left-out family's AUC.

Recipes needing engine settings: mixup (optim.mixup), srm (model.stem = "srm": the backbone sees
the SRM residuals only), native-crop (data.crop = "native", a 3 x 3 grid of crops at evaluation)
and native+srm (both).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))

from report import report  # noqa: E402

from engine.cli import main as ffdv  # noqa: E402
from engine.contract.runstate import load_run  # noqa: E402
from engine.data.leakage import auc_score  # noqa: E402


def _merge(base: dict, extra: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


# Each recipe: config settings on top of the defaults, and what it stands for. All but `default` and
# `native+srm` feed the backbone the image itself (stem rgb), as every recipe did before the SRM stem won
# and became the default: they compare against the previous default, `rgb`.
RGB = {"model": {"stem": "rgb"}}


def _on_rgb(extra: dict) -> dict:
    return _merge(RGB, extra)


RECIPES: dict[str, tuple[dict, str]] = {
    "baseline": (_on_rgb({"optim": {"optimizer": "adam", "lr": 0.005, "schedule": "step", "warmup_epochs": 0},
                          "data": {"augment": "none"}}),
                 "the teaching baseline: Adam at 0.005, step schedule, no augmentation"),
    "rgb": (RGB, "the previous default: AdamW, automatic lr, warmup + cosine, light augmentation (flip, resized "
                 "crop), the backbone sees the image (model.stem = rgb)"),
    "strong-aug": (_on_rgb({"data": {"augment": "strong"}}),
                   "rgb with forgery-aware augmentation: + colour jitter, blur (p 0.2), JPEG re-compression 50-95 (p 0.3)"),
    "label-smooth": (_on_rgb({"optim": {"label_smoothing": 0.1}}), "rgb with label smoothing 0.1"),
    "no-aug": (_on_rgb({"data": {"augment": "none"}}), "rgb without augmentation (resized whole images)"),
    "longer": (_on_rgb({"train": {"epochs_factor": 2}}), "rgb with twice the epochs"),
    "mixup": (_on_rgb({"optim": {"mixup": 0.2}}), "rgb with mixup (timm's Mixup, alpha 0.2, soft-target loss)"),
    "native-crop": (_on_rgb({"data": {"crop": "native", "eval_grid": 3}}),
                    "rgb on random crops at native resolution (no resize), scored by the mean over a 3 x 3 grid of crops"),
    "rgb+srm": ({"model": {"stem": "rgb+srm"}}, "the image and its SRM residuals stacked (6 channels)"),
    "default": ({}, "today's default: rgb behind the fixed SRM high-pass stem (model.stem = srm): the backbone sees "
                    "only the residuals, not the content"),
    "native+srm": ({"data": {"crop": "native", "eval_grid": 3}},
                   "the default on native crops: SRM residuals at full resolution, 3 x 3 grid evaluation"),
    "srm+strong": ({"data": {"augment": "strong"}},
                   "the default with stronger re-compression and resampling: + colour jitter, blur, JPEG 50-95"),
    "pseudo-fakes": ({"data": {"pseudo_fakes": 0.5}},
                     "the default with self-blended pseudo-fakes: half of the real training images become fakes each "
                     "epoch, blended with a changed copy of themselves under a soft mask (data.pseudo_fakes = 0.5)"),
    "native+pseudo-fakes": ({"data": {"crop": "native", "eval_grid": 3, "pseudo_fakes": 0.5}},
                            "pseudo-fakes on native crops: the residuals of the blend seams at full resolution, "
                            "3 x 3 grid evaluation"),
    "pseudo-fakes+strong": ({"data": {"pseudo_fakes": 0.5, "augment": "strong"}},
                            "pseudo-fakes with forgery-aware augmentation (colour, blur, JPEG re-compression)"),
}
COLUMNS = ("recipe", "val_auc", "test_auc_unseen_sources", "test_auc_unseen_family", "minutes")


def test_subsets(data: Path, predictions: pd.DataFrame) -> dict[str, float | None]:
    """AUC of the test predictions on unseen photographs (known families) and on the unseen family."""
    record = json.loads((data / "sources.json").read_text())
    unseen = record["unseen_family"]["family"]
    families = {name.split("/", 1)[1]: tuple(image.get("families", ()))
                for name, image in record["images"].items() if name.startswith("testset/")}
    kind = predictions["img_name"].map(lambda n: "real" if not families[n] else ("unseen" if unseen in families[n] else "known"))
    out = {}
    for key, fakes in (("test_auc_unseen_sources", "known"), ("test_auc_unseen_family", "unseen")):
        rows = predictions[kind.isin(["real", fakes])]
        out[key] = auc_score(rows["target"].to_numpy(), rows["score"].to_numpy())
    return out


def train_recipe(name: str, data: Path, work: Path, args: argparse.Namespace, seed: int, run_name: str = "") -> Path:
    """Train one recipe; its run folder."""
    settings, _ = RECIPES[name]
    run_name = run_name or name
    settings = _merge({"data": {"root": str(data), "img_size": args.img_size, "workers": args.workers},
                       "model": {"name": args.model},
                       "train": {"epochs": args.epochs, "batch_size": args.batch_size, "seed": seed},
                       "run": {"runs": str(work / "runs"), "name": run_name}}, settings)
    factor = settings["train"].pop("epochs_factor", 1)
    settings["train"]["epochs"] = args.epochs * factor
    config = work / f"{run_name}.toml"
    config.write_bytes(tomli_w.dumps(settings).encode())
    if ffdv(["train", "--config", str(config)]) != 0:
        raise SystemExit(f"recipe {name}: training failed; see {work / 'runs' / run_name / 'engine.log'}")
    return work / "runs" / run_name


def evaluate_auc(run_dir: Path, data: list[str], out: Path, workers: int) -> pd.DataFrame:
    """The best checkpoint's per-image predictions on a split."""
    if ffdv(["evaluate", "--checkpoint", str(run_dir), "--data", *data, "--out", str(out), "--workers", str(workers)]) != 0:
        raise SystemExit(f"{run_dir.name}: evaluation on {' '.join(data)} failed")
    return pd.read_csv(out.with_suffix(".csv"), dtype={"img_name": str})


def run_recipe(name: str, data: Path, work: Path, args: argparse.Namespace) -> dict:
    started = time.monotonic()
    run_dir = train_recipe(name, data, work, args, args.seed)
    state = load_run(run_dir)
    predictions = evaluate_auc(run_dir, [str(data), "--split", "test"], work / f"{name}-test.json", args.workers)
    return {"recipe": name, "val_auc": state.best_value, **test_subsets(data, predictions),
            "minutes": (time.monotonic() - started) / 60}


def table(rows: list[dict]) -> str:
    def cell(v):
        return "–" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| recipe | val AUC | test AUC, unseen photographs | test AUC, unseen family | minutes |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['recipe']} | {cell(r['val_auc'])} | {cell(r['test_auc_unseen_sources'])} | "
              f"{cell(r['test_auc_unseen_family'])} | {r['minutes']:.1f} |" for r in rows]
    return "\n".join(lines)


def run_families_recipe(name: str, data: Path, work: Path, args: argparse.Namespace, seed: int) -> dict:
    """One recipe and seed of the unseen-family benchmark: AUC on each test folder of the family set."""
    from make_family_data import TEST_SETS, UNSEEN_FAMILIES

    started = time.monotonic()
    run_dir = train_recipe(name, data, work, args, seed, run_name=f"{name}-seed{seed}")
    row: dict = {"recipe": name, "seed": seed, "val_auc": load_run(run_dir).best_value}
    for test in TEST_SETS:
        frame = evaluate_auc(run_dir, [str(data / f"test-{test}")], work / f"{run_dir.name}-{test}.json", args.workers)
        row[f"auc {test}"] = auc_score(frame["target"].to_numpy(), frame["score"].to_numpy())
    unseen = [row[f"auc {f}"] for f in UNSEEN_FAMILIES if row[f"auc {f}"] is not None]
    row["auc unseen mean"] = float(np.mean(unseen)) if unseen else None
    row["minutes"] = (time.monotonic() - started) / 60
    return row


def families_table(rows: list[dict]) -> str:
    columns = [c for c in rows[0] if c not in ("recipe", "seed")]
    lines = ["| recipe | seed | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for r in rows:
        cells = ["–" if r[c] is None else f"{r[c]:.4f}" if c != "minutes" else f"{r[c]:.1f}" for c in columns]
        lines.append(f"| {r['recipe']} | {r['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_families(args: argparse.Namespace, names: list[str]) -> list[dict]:
    import make_family_data

    data = args.families.resolve()
    if not (data / "trainset").is_dir():
        make_family_data.make(data, args.family_seed, {"train": args.family_counts[0], "val": args.family_counts[1],
                                                       "test": args.family_counts[2]})
    with tempfile.TemporaryDirectory(prefix="bench-families-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = [run_families_recipe(name, data, work, args, seed) for name in names for seed in args.seeds]
    print(families_table(rows))
    report({f"{r['recipe']} seed {r['seed']} {k}": (np.nan if r[k] is None else r[k])
            for r in rows for k in r if k not in ("recipe", "seed")}, args.json)
    return rows


def run_fold(name: str, data: Path, left_out: str, work: Path, args: argparse.Namespace, seed: int) -> dict:
    """One recipe and seed on one fold of the rotation: AUC on the trained families and on the one left out."""
    started = time.monotonic()
    run_dir = train_recipe(name, data, work, args, seed, run_name=f"{name}-without-{left_out}-seed{seed}")
    row: dict = {"recipe": name, "seed": seed, "left out": left_out, "val_auc": load_run(run_dir).best_value}
    for test, column in (("seen", "auc seen"), (left_out, "auc left out")):
        frame = evaluate_auc(run_dir, [str(data / f"test-{test}")], work / f"{run_dir.name}-{test}.json", args.workers)
        row[column] = auc_score(frame["target"].to_numpy(), frame["score"].to_numpy())
    row["minutes"] = (time.monotonic() - started) / 60
    return row


def rotation_tables(rows: list[dict]) -> str:
    def cell(v):
        return "–" if v is None else f"{v:.4f}"

    lines = ["| recipe | seed | left out | val AUC | AUC seen | AUC left out | minutes |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['recipe']} | {r['seed']} | {r['left out']} | {cell(r['val_auc'])} | {cell(r['auc seen'])} | "
              f"{cell(r['auc left out'])} | {r['minutes']:.1f} |" for r in rows]
    lines += ["", "| recipe | mean AUC seen | mean AUC left out | folds x seeds |", "|---|---|---|---|"]
    for recipe, group in pd.DataFrame(rows).groupby("recipe", sort=False):
        lines.append(f"| {recipe} | {cell(group['auc seen'].mean())} | {cell(group['auc left out'].mean())} | "
                     f"{len(group)} |")
    return "\n".join(lines)


def run_rotation(args: argparse.Namespace, names: list[str]) -> list[dict]:
    import make_family_data

    wanted = args.leave_one_out.split(",") if args.leave_one_out != "all" else list(make_family_data.ALL_FAMILIES)
    unknown = [f for f in wanted if f not in make_family_data.ALL_FAMILIES]
    if unknown:
        raise SystemExit(f"unknown family {', '.join(unknown)} to leave out; known: "
                         f"{', '.join(make_family_data.ALL_FAMILIES)}")
    root = args.families.resolve()
    counts = dict(zip(("train", "val", "test"), args.family_counts))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-rotation-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for family in wanted:
            data = root / f"leave-out-{family}"
            if not (data / f"test-{family}").is_dir():
                data.mkdir(parents=True, exist_ok=True)
                make_family_data.make(data, args.family_seed, counts, leave_out=family)
            rows += [run_fold(name, data, family, work, args, seed) for name in names for seed in args.seeds]
    print(rotation_tables(rows))
    report({f"{r['recipe']} seed {r['seed']} without {r['left out']} {k}": (np.nan if r[k] is None else r[k])
            for r in rows for k in ("val_auc", "auc seen", "auc left out", "minutes")}, args.json)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "sample_data")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma separated, from: {', '.join(RECIPES)}")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=REPO / ".bench" / "bench_quality.json")
    parser.add_argument("--families", type=Path, help="the unseen-family benchmark on this family set "
                        "(scripts/make_family_data.py; made here when the folder does not exist)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7], help="with --families: a run per seed")
    parser.add_argument("--family-seed", type=int, default=20261206, help="seed of a family set made here")
    parser.add_argument("--family-counts", type=int, nargs=3, default=[384, 128, 96], metavar=("TRAIN", "VAL", "TEST"),
                        help="images of a family set made here: training, validation, each test folder")
    parser.add_argument("--leave-one-out", metavar="FAMILIES", help="with --families: the leave-one-family-out "
                        "rotation, one fold per family left out ('all', or comma separated)")
    args = parser.parse_args(argv)
    if args.leave_one_out and args.families is None:
        parser.error("--leave-one-out needs --families DIR (where the folds are made)")
    return args


def run(args: argparse.Namespace) -> list[dict]:
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipe {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    if args.leave_one_out:
        return run_rotation(args, names)
    if args.families is not None:
        return run_families(args, names)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = [run_recipe(name, args.data.resolve(), work, args) for name in names]
    print(table(rows))
    results = {f"{r['recipe']} {k}": (np.nan if r[k] is None else r[k]) for r in rows for k in COLUMNS[1:]}
    report(results, args.json)
    return rows


if __name__ == "__main__":
    run(parse_args())
