"""What identifies a matrix cell and a row in it: hashes of the content they depend on, never paths or counts.

A cell (one dataset under one perturbation) is reused only when its key matches: the split's
image names, labels and image files (size and modification time of each), the perturbation's
canonical steps, the seed, the decode rules and :data:`TRANSFORM_VERSION`. A row's scores in
it are reused only when the row's key matches: the weights as loaded (a hash of every tensor's
bytes, so a live run's checkpoint that changes on disk is a new row), the model, stem and input
spec, and the TTA views. Flip every label, cut rows or retrain a checkpoint: nothing stale is
reused. Cell files have bounded names (a long chain is hashed), so no name is too long.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.contract.perturbspec import Perturbation
from engine.data.dataset import Split
from engine.data.images import DEFAULT_MAX_PIXELS
from engine.ensemble import TTA_SCALES
from engine.loader import ImageSpec

TRANSFORM_VERSION = 2  # bump when decoding, perturbing or resizing changes what a model sees
MAX_SLUG = 80  # bytes of a cell file's name before it is shortened with a hash
META_KEY = b"ffdv"


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def state_digest(model: torch.nn.Module) -> str:
    """A hash of the weights exactly as loaded (names, dtypes, shapes and bytes of every tensor)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return h.hexdigest()


def spec_fields(spec: ImageSpec) -> list:
    return [spec.img_size, list(spec.mean), list(spec.std), spec.eval_crop, spec.crop, spec.eval_grid, spec.eval_reduce]


def checkpoint_content(weights: str, model: str, stem: str, spec: ImageSpec) -> str:
    return digest("checkpoint", weights, model, stem, spec_fields(spec))


def split_digest(split: Split) -> str:
    """Names, labels and each image file's size and modification time, in the split's order."""
    h = hashlib.sha256(str(Path(split.folder).resolve()).encode() + b"\0")
    targets = split.targets if split.targets is not None else np.full(len(split), -1)
    for name, target in zip(split.names, np.asarray(targets, dtype=np.int64)):
        try:
            stat = os.stat(Path(split.folder) / name)
            ident = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            ident = "missing"
        h.update(f"{name}\0{int(target)}\0{ident}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:32]


def perturbation_steps(perturbation: Perturbation) -> list:
    return [[s.kind, repr(float(s.value))] for s in perturbation.steps]


def cell_digest(split_key: str, perturbation: Perturbation, seed: int) -> str:
    return digest("cell", TRANSFORM_VERSION, split_key, perturbation_steps(perturbation), seed, DEFAULT_MAX_PIXELS)


def row_digest(member_content: str, tta: tuple[str, ...]) -> str:
    return digest("row", TRANSFORM_VERSION, member_content, list(tta), list(TTA_SCALES) if "scales" in tta else [])


def bounded_name(text: str, limit: int = MAX_SLUG) -> str:
    """``text`` as a file name of at most ``limit`` bytes: a long one keeps its start and gains a hash of the whole."""
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text) or "_"
    if len(safe.encode()) <= limit and not safe.startswith("."):
        return safe
    return safe.encode()[: limit - 17].decode(errors="ignore").lstrip(".") + "-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def perturbation_slug(perturbation: Perturbation) -> str:
    return bounded_name(perturbation.name.replace(":", "-").replace("+", "_"))


# ---------------------------------------------------------------- a cell file and its keys


def write_cell(path: Path, frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """The frame as Parquet with its keys in the file's metadata (one atomic file: keys and scores agree)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, str(path))


def read_cell(path: Path) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """A cell file and its keys, or None when it is missing, unreadable or has no keys (an older format)."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return None
    try:
        table = pq.read_table(str(path))
        meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"null"))
        frame = table.to_pandas()
    except Exception:
        return None  # a half-written file cannot exist (atomic rename); anything unreadable is redone
    if not isinstance(meta, dict) or not isinstance(meta.get("columns"), dict):
        return None
    return frame, meta


def matches_split(frame: pd.DataFrame, split: Split) -> bool:
    """A reused cell must hold the split's images, in its order, with its labels."""
    if "img_name" not in frame or "target" not in frame or len(frame) != len(split):
        return False
    targets = split.targets if split.targets is not None else np.full(len(split), -1)
    return (frame["img_name"].astype(str).tolist() == list(split.names)
            and np.array_equal(frame["target"].to_numpy(dtype=np.int64), np.asarray(targets, dtype=np.int64)))
