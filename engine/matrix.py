"""The evaluation matrix: checkpoints x datasets x perturbations, with ensembles and measured TTA.

Why it looks like this:
- Each image is decoded and perturbed once per dataset x perturbation ("cell") and every
  loaded model scores that same batch: models of one input size share the resized uint8
  batch, models of one normalisation share the normalised tensor, and each other model
  gets its own resize and normalisation from the same decoded image.
- A cell is one pass and one file (``cells/<dataset>/<perturbation>.parquet``, written
  atomically when the pass ends), so memory is bounded by a batch plus a few floats per
  image, and a stopped matrix keeps its finished cells: a re-run skips them.
- The clean cell of one checkpoint is computed exactly as ``ffdv evaluate`` computes it
  (same decode, resize, normalisation, batches and precision), so its row equals it.
- Ensembles (mean, rank) are computed from the members' per-image scores afterwards;
  soups and TTA views are models and views, so they take part in the passes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from engine.checkpoint_loading import LoadedCheckpoint, load_checkpoint
from engine.contract.errors import FfdvError
from engine.contract.matrixfolder import own_matrix_folder
from engine.contract.perturbspec import Perturbation
from engine.contract.protocol import clean_number
from engine.contract.runstore import atomic_path, atomic_write_json
from engine.contract.text import printable
from engine.data.dataset import Split
from engine.data.images import BadImage, open_rgb
from engine.device import DeviceSetup
from engine.ensemble import (
    SoupError,
    average_state_dicts,
    check_soupable,
    mean_ensemble,
    rank_ensemble,
    score_loss,
    tta_views,
    view_input,
)
from engine.inference import Scores, image_scores, reduce_crops
from engine.loader import DeviceNormalizer, EpochSampler, ImageDataset, ImageSpec, eval_transform, sample_seed
from engine.matrix_keys import (
    bounded_name,
    cell_digest,
    checkpoint_content,
    digest,
    matches_split,
    perturbation_slug,
    read_cell,
    row_digest,
    spec_fields,
    split_digest,
    state_digest,
    write_cell,
)
from engine.metrics import detection_metrics
from engine.perturb import perturb_image, perturbation_seed
from engine.predict import check_finite_scores

FORMAT = 1
METRICS = ("auc", "ap", "accuracy", "precision", "recall", "f1", "eer", "tpr_at_fpr_1e-3", "loss")
SCORES_FILE = "scores.parquet"


# ---------------------------------------------------------------- what takes part


@dataclass
class Member:
    """A model that runs forward passes: a checkpoint, a soup or the greedy soup."""

    key: str
    kind: str  # "checkpoint", "soup" or "greedy-soup"
    loaded: LoadedCheckpoint
    sources: list[str]
    content: str = ""  # a hash of its weights as loaded and its input spec: what its scores depend on
    weights_sha256: str = ""

    @property
    def spec(self) -> ImageSpec:
        return self.loaded.spec


@dataclass(frozen=True)
class Row:
    """One row of the matrix that a forward pass produces: a member, plain or under TTA."""

    member: str
    tta: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.member + "".join(f" +{m}" for m in self.tta)


@dataclass
class DataSource:
    key: str
    split: Split


@dataclass
class Plan:
    members: list[Member]
    datasets: list[DataSource]
    perturbations: list[Perturbation]
    ensembles: list[str] = field(default_factory=list)
    tta: list[str] = field(default_factory=list)
    seed: int = 0
    batch_size: int = 64
    workers: int = 0

    @property
    def checkpoints(self) -> list[Member]:
        return [m for m in self.members if m.kind == "checkpoint"]


def member_key(path: Path, taken: set[str]) -> str:
    """A short row name: the run's name for its best checkpoint, run/epoch-NNN for another, else the file stem."""
    resolved = path.resolve()
    if path.parent.name == "checkpoints":
        run = path.parent.parent.name
        key = run if path.stem == "best" else f"{run}/{path.stem}"
    else:
        key = resolved.stem
    unique, n = key, 2
    while unique in taken:
        unique, n = f"{key}-{n}", n + 1
    taken.add(unique)
    return unique


def load_members(checkpoints: list[str], setup: DeviceSetup, model_name: str | None = None,
                 img_size: int | None = None) -> list[Member]:
    taken: set[str] = set()
    members = []
    for text in checkpoints:  # each checkpoint is read once; soups average these weights, never the file again
        loaded = load_checkpoint(text, setup, model_name, img_size)
        weights = state_digest(loaded.model)
        content = checkpoint_content(weights, loaded.sidecar.model, loaded.sidecar.stem, loaded.spec)
        members.append(Member(member_key(loaded.path, taken), "checkpoint", loaded, [str(loaded.path.resolve())],
                              content, weights))
    return members


def dataset_sources(splits: list[Split]) -> list[DataSource]:
    """Unique keys for splits: the folder's name, with its parent's when two share one (a/valset, b/valset)."""
    names = [s.folder.name for s in splits]
    sources, taken = [], set()
    for split, name in zip(splits, names):
        key = f"{split.folder.parent.name}-{name}" if names.count(name) > 1 else name
        unique, n = key, 2
        while unique in taken:
            unique, n = f"{key}-{n}", n + 1
        taken.add(unique)
        sources.append(DataSource(unique, split))
    return sources


def refuse_unlabelled(split: Split) -> None:
    if split.targets is None:
        raise FfdvError(f"{split.folder}: this split has no labels (no target column in its label file, or no real/ and "
                        "fake/ folders), so it cannot be evaluated: every metric compares scores with targets. Fix: "
                        "pass a labelled split (or its label file with --labels), or use `ffdv predict` for a submission")


def soup_member(key: str, kind: str, members: list[Member], setup: DeviceSetup) -> Member:
    """The weight average of the members (their weights as loaded, not re-read), in a copy of the first one's model."""
    check_soup_plan(members)
    states = [{k: v.detach().cpu() for k, v in m.loaded.model.state_dict().items()} for m in members]
    check_soupable([m.key for m in members], [m.loaded.sidecar.model for m in members], states)
    first = members[0].loaded
    model = copy.deepcopy(first.model)
    model.load_state_dict(average_state_dicts(states), strict=True)
    model.to(setup.device)
    if setup.channels_last:
        model.to(memory_format=torch.channels_last)
    sidecar = replace(first.sidecar, extra={**first.sidecar.extra, "soup_of": [m.key for m in members]})
    loaded = LoadedCheckpoint(model, first.spec, sidecar, first.path)
    return Member(key, kind, loaded, [s for m in members for s in m.sources], digest("soup", [m.content for m in members]))


def check_soup_plan(members: list[Member]) -> None:
    """Refuse a soup across architectures or input specs before any image is decoded: the average would be
    judged at the first member's input size, which is not what the others were trained for."""
    names = [m.loaded.sidecar.model for m in members]
    if len(set(names)) > 1:
        check_soupable([m.key for m in members], names, [{}] * len(members))
    specs = [spec_fields(m.spec) for m in members]
    if any(spec != specs[0] for spec in specs):
        listed = ", ".join(f"{m.key} takes {m.spec.img_size} px ({m.spec.crop}, mean {list(m.spec.mean)})" for m in members)
        raise SoupError(f"a soup averages checkpoints that take the same input, but {listed}. Fix: pass only "
                        "checkpoints of one input size and normalisation to --ensemble soup/greedy (mean and rank "
                        "work across input sizes)")


# ---------------------------------------------------------------- one pass over a cell


class CellDataset(ImageDataset):
    """Items: (one uint8 H x W x 3 tensor per input group, or None; target; index; reason).

    A perturbed cell decodes the file at its full resolution, perturbs that image once and
    gives each input group its own resize of it: a perturbation means the same for every
    model, whatever else is in the matrix. The clean cell decodes as ``ffdv evaluate`` does for
    each group (JPEG draft to the group's size), so each model's clean row equals its evaluate.
    An image whose perturbation fails is scored as unreadable in this cell, with the reason.
    """

    def __init__(self, split: Split, perturbation: Perturbation, transforms: list, decode_sizes: list[int], seed: int):
        super().__init__(split, transform=None, decode_size=0, seed=seed)
        self.perturbation = perturbation
        self.transforms = transforms
        self.decode_sizes = list(decode_sizes) if perturbation.is_clean else [0] * len(decode_sizes)

    def __getitem__(self, key):
        index = key[0] if isinstance(key, tuple) else key
        target = int(self.targets[index])
        try:
            images = {size: open_rgb(f"{self.folder}/{self.name(index)}", size, self.max_pixels)
                      for size in dict.fromkeys(self.decode_sizes)}
        except BadImage as exc:
            return None, target, index, str(exc)
        if not self.perturbation.is_clean:
            seed = perturbation_seed(self.seed, self.perturbation, index)
            try:
                images = {0: perturb_image(self.perturbation, images[0], seed)}
            except (RuntimeError, ValueError, OSError) as exc:
                return None, target, index, f"{self.perturbation.name} failed on this image: {str(exc)[:200]}"
        with torch.random.fork_rng(devices=[]):  # the same seeding as the loader's, should a transform draw
            torch.default_generator.manual_seed(sample_seed(self.seed, 0, index))
            return tuple(t(images[size]) for t, size in zip(self.transforms, self.decode_sizes)), target, index, ""


def collate_groups(items: list):
    good = [it for it in items if it[0] is not None]
    bad = [(it[2], it[3]) for it in items if it[0] is None]
    if not good:
        return None, torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64), bad
    groups = [torch.stack([it[0][g] for it in good]) for g in range(len(good[0][0]))]
    return (groups, torch.tensor([it[1] for it in good], dtype=torch.int64),
            torch.tensor([it[2] for it in good], dtype=torch.int64), bad)


def _transform_key(spec: ImageSpec) -> tuple[int, float, str, int]:
    return spec.img_size, spec.eval_crop, spec.crop, spec.eval_crops


def _norm_key(spec: ImageSpec) -> tuple:
    return _transform_key(spec), spec.mean, spec.std


@dataclass
class PassResult:
    scores: dict[str, np.ndarray]  # row key -> probability of fake per image (NaN: unreadable)
    losses: dict[str, np.ndarray]
    bad: dict[int, str]


def score_pass(
    rows: list[tuple[Row, Member]],
    split: Split,
    perturbation: Perturbation,
    setup: DeviceSetup,
    batch_size: int,
    workers: int,
    seed: int = 0,
    on_images: Callable[[int], None] | None = None,
) -> PassResult:
    """Decode (and perturb) each image once; every row's model scores the batch of its input group."""
    groups: dict[tuple, int] = {}
    transforms, decode_sizes = [], []
    for _, member in rows:
        key = _transform_key(member.spec)
        if key not in groups:
            groups[key] = len(groups)
            transform, decode = eval_transform(member.spec)
            transforms.append(transform)
            decode_sizes.append(decode)
    dataset = CellDataset(split, perturbation, transforms, decode_sizes, seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset), False, 0),
                        num_workers=workers, collate_fn=collate_groups, pin_memory=setup.is_cuda,
                        persistent_workers=False, prefetch_factor=4 if workers > 0 else None,
                        generator=torch.Generator().manual_seed(0))
    normalizers = {}
    for _, member in rows:
        normalizers.setdefault(_norm_key(member.spec), DeviceNormalizer(member.spec, setup.device, setup.channels_last))
    n = len(split)
    scores = {row.key: np.full(n, np.nan) for row, _ in rows}
    losses = {row.key: np.full(n, np.nan) for row, _ in rows}
    views = {row.key: tta_views(row.tta) for row, _ in rows}
    bad: dict[int, str] = {}
    for _, member in rows:
        member.loaded.model.eval()
    with torch.inference_mode():
        for images, targets, indices, batch_bad in loader:
            bad.update(batch_bad)
            if images is not None:
                index = indices.numpy()
                targets_dev = targets.to(setup.device, non_blocking=True)
                inputs: dict[tuple, torch.Tensor] = {}
                for row, member in rows:
                    nkey = _norm_key(member.spec)
                    if nkey not in inputs:
                        inputs[nkey] = normalizers[nkey](images[groups[_transform_key(member.spec)]])
                    group = images[groups[_transform_key(member.spec)]]
                    crops = group.shape[1] if group.dim() == 5 else 1
                    probs, loss = _forward(member, inputs[nkey], views[row.key], targets_dev, setup, crops)
                    scores[row.key][index] = probs
                    losses[row.key][index] = loss
            if on_images is not None:
                on_images(int(indices.numel()) + len(batch_bad))
    readable = np.ones(n, dtype=bool)
    readable[list(bad)] = False
    for row, member in rows:  # NaN would make every metric up: refused, naming the checkpoint
        values = scores[row.key][readable]
        check_finite_scores(Scores(np.flatnonzero(readable), values, np.empty(0), np.empty(0), {}), member.loaded.path)
    return PassResult(scores, losses, bad)


def _forward(member: Member, x: torch.Tensor, views, targets: torch.Tensor, setup: DeviceSetup, crops: int = 1):
    """Probabilities of fake (float32, as ``ffdv evaluate`` keeps them) and per-image losses. ``x`` holds ``crops``
    consecutive crops per image (native crops); each view's crop probabilities are reduced per image first."""
    model = member.loaded.model
    reduce = member.spec.eval_reduce
    if len(views) == 1 and not views[0].flip and views[0].scale == 1.0:
        with setup.autocast():
            logits = model(x)
        probs, loss = image_scores(logits, targets, crops, reduce)
        return probs.float().cpu().numpy().astype(np.float64), loss.float().cpu().numpy().astype(np.float64)
    total = None
    for view in views:
        with setup.autocast():
            logits = model(view_input(x, view))
        p = reduce_crops(logits.float().softmax(dim=1)[:, 1], crops, reduce).double()
        total = p if total is None else total + p
    probs = (total / len(views)).cpu().numpy()
    return probs, score_loss(probs, targets.cpu().numpy())


# ---------------------------------------------------------------- metrics of a column


def cell_metrics(score: np.ndarray, target: np.ndarray, loss: np.ndarray) -> dict[str, Any]:
    """The validation table's metrics over the readable images, as ``ffdv evaluate`` reports them."""
    readable = ~np.isnan(score)
    metrics = detection_metrics(torch.from_numpy(score[readable]), torch.from_numpy(target[readable]))
    labelled = readable & (target >= 0)
    metrics["loss"] = float(loss[labelled].mean()) if labelled.any() else None
    return {k: (clean_number(v) if isinstance(v, float) else v) for k, v in metrics.items()}


# ---------------------------------------------------------------- the whole matrix


def cell_file(out: Path, source: DataSource, perturbation: Perturbation) -> Path:
    """cells/<dataset>/<perturbation>.parquet, both names bounded (a long chain is hashed)."""
    return Path(out) / "cells" / bounded_name(source.key) / f"{perturbation_slug(perturbation)}.parquet"


def fingerprint(plan: Plan) -> dict[str, Any]:
    """What the matrix's scores depend on, by content (weights, images and labels): its default name."""
    return {
        "format": FORMAT,
        "members": {m.key: [m.kind, m.content] for m in plan.members if m.kind != "greedy-soup"},
        "datasets": {d.key: split_digest(d.split) for d in plan.datasets},
        "seed": plan.seed,
    }


def default_name(plan: Plan) -> str:
    text = json.dumps([fingerprint(plan), [p.name for p in plan.perturbations], plan.ensembles, plan.tta],
                      sort_keys=True, default=str)
    return f"matrix-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def default_out(plan: Plan, name: str) -> Path:
    """evaluations/<name>/ of the first checkpoint's run; ./evaluations/<name>/ for a loose file."""
    first = plan.checkpoints[0].loaded.path
    if first.parent.name == "checkpoints":
        return first.parent.parent / "evaluations" / name
    return Path("evaluations") / name


@dataclass
class Progress:
    """What the console or the app shows: images done of the total, with the cell being scored."""

    done: int
    total: int
    stage: str
    eta_s: float | None


class MatrixRunner:
    """Scores the cells a matrix lacks into ``out/cells`` (a folder it owns and locks), reusing only cells and rows
    whose content keys match (matrix_keys)."""

    def __init__(self, plan: Plan, setup: DeviceSetup, out: Path,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_warning: Callable[[str], None] | None = None):
        self.plan = plan
        self.setup = setup
        self.out = Path(out)
        self.cells = self.out / "cells"
        self.on_progress = on_progress
        self.on_warning = on_warning or (lambda text: print(f"warning: {text}", file=sys.stderr))
        self.done = 0
        self.total = 0
        self.started = time.monotonic()
        self.computed_cells: list[str] = []
        self.reused_cells: list[str] = []
        self.greedy: dict[str, Any] | None = None
        self._split_keys: dict[str, str] = {}

    # -------------------------------------------------------- bookkeeping

    def split_key(self, source: DataSource) -> str:
        if source.key not in self._split_keys:
            self._split_keys[source.key] = split_digest(source.split)
        return self._split_keys[source.key]

    def cell_key(self, source: DataSource, perturbation: Perturbation) -> str:
        return cell_digest(self.split_key(source), perturbation, self.plan.seed)

    def cell_path(self, source: DataSource, perturbation: Perturbation) -> Path:
        return cell_file(self.out, source, perturbation)

    def _row_keys(self, rows: list[tuple[Row, Member]]) -> dict[str, str]:
        return {row.key: row_digest(member.content, row.tta) for row, member in rows}

    def _read_cell(self, source: DataSource, perturbation: Perturbation) -> tuple[pd.DataFrame, dict[str, str]] | None:
        """The cell's frame with only the rows whose keys still match, or None when the cell is stale."""
        found = read_cell(self.cell_path(source, perturbation))
        if found is None:
            return None
        frame, meta = found
        if meta.get("cell") != self.cell_key(source, perturbation) or not matches_split(frame, source.split):
            return None
        return frame, {k: v for k, v in meta["columns"].items() if isinstance(v, str) and k in frame}

    def _rows(self) -> list[tuple[Row, Member]]:
        rows = []
        for member in self.plan.members:
            rows.append((Row(member.key), member))
            for mode in self.plan.tta:
                rows.append((Row(member.key, (mode,)), member))
        return rows

    def _tick(self, stage: str):
        def advance(n: int) -> None:
            self.done += n
            if self.on_progress is not None:
                elapsed = time.monotonic() - self.started
                eta = elapsed / self.done * (self.total - self.done) if self.done and self.total >= self.done else None
                self.on_progress(Progress(self.done, self.total, stage, eta))
        return advance

    # -------------------------------------------------------- passes

    def _missing(self, source: DataSource, perturbation: Perturbation, rows: list[tuple[Row, Member]]):
        found = self._read_cell(source, perturbation)
        frame, columns = found if found is not None else (None, {})
        wanted = self._row_keys(rows)
        missing = [(row, member) for row, member in rows if columns.get(row.key) != wanted[row.key]]
        return frame, columns, missing

    def _score_cell(self, source: DataSource, perturbation: Perturbation, rows: list[tuple[Row, Member]]) -> pd.DataFrame:
        """The rows a cell's file lacks (or holds for other content), scored in one pass and merged into it."""
        frame, columns, missing = self._missing(source, perturbation, rows)
        name = f"{source.key} · {perturbation.name}"
        if not missing:
            if name not in self.computed_cells and name not in self.reused_cells:
                self.reused_cells.append(name)
            return frame
        result = score_pass(missing, source.split, perturbation, self.setup, self.plan.batch_size, self.plan.workers,
                            self.plan.seed, self._tick(name))
        if frame is None:
            targets = source.split.targets if source.split.targets is not None else np.full(len(source.split), -1)
            frame = pd.DataFrame({"img_name": source.split.names, "target": np.asarray(targets, dtype=np.int64)})
            frame["unreadable"] = [result.bad.get(i, "") for i in range(len(source.split))]
        wanted = self._row_keys(missing)
        for row, _ in missing:
            frame[row.key] = result.scores[row.key]
            frame[f"loss|{row.key}"] = result.losses[row.key]
            columns[row.key] = wanted[row.key]
        path = self.cell_path(source, perturbation)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write_cell(tmp, frame, {"cell": self.cell_key(source, perturbation), "columns": columns})
        if name in self.reused_cells:
            self.reused_cells.remove(name)
        if name not in self.computed_cells:
            self.computed_cells.append(name)
        return frame

    def _greedy_key(self) -> str:
        first = self.plan.datasets[0]
        return digest("greedy", self.cell_key(first, Perturbation()), [[m.key, m.content] for m in self.plan.checkpoints])

    def _saved_greedy(self) -> list[Member] | None:
        """The ingredients greedy.json chose for these very checkpoints and data; a damaged or stale file is redone."""
        saved = self.cells / "greedy.json"
        if not saved.is_file():
            return None
        checkpoints = {m.key: m for m in self.plan.checkpoints}
        try:
            data = json.loads(saved.read_text())
            if data.get("key") != self._greedy_key():
                return None
            chosen = [checkpoints[k] for k in data["ingredients"]]
            if not chosen:
                raise ValueError("no ingredients")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.on_warning(f"{saved}: unreadable ({printable(exc, 200)}); the greedy soup is chosen again")
            return None
        self.greedy = data
        return chosen

    def _greedy_soup(self, first_clean: pd.DataFrame, chosen: list[Member] | None) -> Member:
        """Checkpoints best first by the first dataset's clean AUC; each joins while the soup's AUC improves."""
        if chosen is not None:
            return soup_member("greedy-soup", "greedy-soup", chosen, self.setup)
        source = self.plan.datasets[0]
        target = first_clean["target"].to_numpy()

        def auc(score: np.ndarray, loss: np.ndarray) -> float:
            value = cell_metrics(score, target, loss)["auc"]
            return -1.0 if value is None else value

        ranked = sorted(self.plan.checkpoints, key=lambda m: -auc(first_clean[m.key].to_numpy(),
                                                                     first_clean[f"loss|{m.key}"].to_numpy()))
        chosen = [ranked[0]]
        best = auc(first_clean[ranked[0].key].to_numpy(), first_clean[f"loss|{ranked[0].key}"].to_numpy())
        history = [{"ingredients": [ranked[0].key], "auc": best, "kept": True}]
        for candidate in ranked[1:]:
            trial = soup_member("greedy-trial", "greedy-soup", [*chosen, candidate], self.setup)
            result = score_pass([(Row(trial.key), trial)], source.split, Perturbation(), self.setup,
                                self.plan.batch_size, self.plan.workers, self.plan.seed,
                                self._tick(f"greedy soup: trying {candidate.key}"))
            value = auc(result.scores[trial.key], result.losses[trial.key])
            kept = value > best
            history.append({"ingredients": [m.key for m in (*chosen, candidate)], "auc": value, "kept": kept})
            if kept:
                chosen.append(candidate)
                best = value
        self.greedy = {"key": self._greedy_key(), "ingredients": [m.key for m in chosen], "auc": best,
                       "history": history, "validation": f"{source.key} · none"}
        atomic_write_json(self.cells / "greedy.json", self.greedy)
        return soup_member("greedy-soup", "greedy-soup", chosen, self.setup)

    def run(self) -> dict[str, Any]:
        """Score every unfinished cell; returns the rows. Claims and locks ``out`` first (matrixfolder)."""
        with own_matrix_folder(self.out):
            return self._run()

    def _run(self) -> dict[str, Any]:
        plan = self.plan
        self.cells.mkdir(parents=True, exist_ok=True)
        cells = [(d, p) for d in plan.datasets for p in plan.perturbations]
        rows = self._rows()
        greedy = "greedy" in plan.ensembles
        self.total = sum(len(source.split) for source, perturbation in cells
                         if greedy or self._missing(source, perturbation, rows)[2])
        saved = self._saved_greedy() if greedy else None
        if greedy and saved is None:
            self.total += len(plan.datasets[0].split) * (len(plan.checkpoints) - 1)
        first = cells[0]
        first_frame = self._score_cell(*first, rows)
        if greedy:
            plan.members.append(self._greedy_soup(first_frame, saved))
            rows = self._rows()
            self._score_cell(*first, rows)
        for source, perturbation in cells[1:]:
            self._score_cell(source, perturbation, rows)
        return {"rows": [r.key for r, _ in rows]}


# ---------------------------------------------------------------- tables from the cells


def row_kinds(plan: Plan) -> dict[str, str]:
    kinds = {}
    for member in plan.members:
        kinds[member.key] = member.kind
        for mode in plan.tta:
            kinds[Row(member.key, (mode,)).key] = f"tta-{mode}"
    for name in plan.ensembles:
        if name in ("mean", "rank"):
            kinds[f"ensemble-{name}"] = "ensemble"
    return kinds


def add_ensembles(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Mean and rank ensembles of the checkpoints (plain rows) as columns beside theirs."""
    members = [m.key for m in plan.checkpoints]
    target = frame["target"].to_numpy()
    for name in plan.ensembles:
        if name not in ("mean", "rank"):
            continue
        columns = [frame[k].to_numpy(dtype=np.float64) for k in members]
        score = mean_ensemble(columns) if name == "mean" else rank_ensemble(columns)
        key = f"ensemble-{name}"
        frame[key] = score
        frame[f"loss|{key}"] = np.where(np.isnan(score), np.nan, score_loss(np.nan_to_num(score, nan=0.5), target))
    return frame


def matrix_frames(plan: Plan, out: Path) -> tuple[pd.DataFrame, list[tuple[DataSource, Perturbation, Path]]]:
    """matrix.csv's table (one row per model x dataset x perturbation, drops from the clean row) and every cell."""
    kinds = row_kinds(plan)
    records, cells = [], []
    for source in plan.datasets:
        clean: dict[str, dict[str, Any]] = {}
        for perturbation in plan.perturbations:
            path = cell_file(out, source, perturbation)
            frame = add_ensembles(pd.read_parquet(path), plan)
            cells.append((source, perturbation, path))  # one cell in memory at a time
            target = frame["target"].to_numpy()
            unreadable = int((frame["unreadable"] != "").sum())
            for key, kind in kinds.items():
                metrics = cell_metrics(frame[key].to_numpy(dtype=np.float64), target,
                                       frame[f"loss|{key}"].to_numpy(dtype=np.float64))
                if perturbation.is_clean:
                    clean[key] = metrics
                record = {"model": key, "kind": kind, "dataset": source.key, "perturbation": perturbation.name,
                          "images": len(frame), "scored": len(frame) - unreadable, "unreadable": unreadable}
                record.update({m: metrics.get(m) for m in METRICS})
                for m in METRICS:
                    base, value = clean.get(key, {}).get(m), metrics.get(m)
                    record[f"drop_{m}"] = None if base is None or value is None else round(base - value, 6)
                records.append(record)
    return pd.DataFrame.from_records(records), cells


def write_scores(cells: list[tuple[DataSource, Perturbation, Path]], plan: Plan, path: Path) -> Path:
    """Every image's score under every row: one Parquet file, a row group per cell (streams, bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = list(row_kinds(plan))
    writer = None
    with atomic_path(path) as tmp:
        try:
            for source, perturbation, cell_path in cells:
                frame = add_ensembles(pd.read_parquet(cell_path), plan)
                part = pd.DataFrame({"dataset": source.key, "perturbation": perturbation.name,
                                     "img_name": frame["img_name"], "target": frame["target"],
                                     "unreadable": frame["unreadable"]})
                for key in keys:
                    part[key] = frame[key].to_numpy(dtype=np.float64)
                table = pa.Table.from_pandas(part, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    return path
