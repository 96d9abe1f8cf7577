"""Pairs of images whose perceptual hashes are within a Hamming distance, between two sets or within one.

Torch-free. Each image has one 64-bit hash per window (engine.data.hashes.WINDOWS: the whole image
first, then centre crops, then a grid of off-centre windows). Two images are near when the whole of
one is near a window of the other: a rescaled or re-compressed copy matches whole to whole, a centred
crop matches its whole to a centre window of the source, and a crop at any position matches a grid
window of the source, within ``crop_threshold`` (a grid window is never exactly where the crop was,
so its hash is a few bits further away).

The search is exhaustive and exact: faiss's IndexBinaryFlat (popcount over packed bits, every core)
when faiss-cpu is installed: about 1e9 hash pairs a second on two busy cores here, so FFDI's
validation against its training set (147k x 524k images, 5 hash pairs each) takes some 6 minutes on
two cores and proportionally less on more. Otherwise numpy in blocks, fine up to some ten thousand
images a side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.data.hashes import GRID_START

BLOCK = 256  # query rows per numpy block (the block's XOR table is BLOCK x base rows)

StopFn = Callable[[], bool]
_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2 has it built in)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    return _BYTE_BITS[values.view(np.uint8).reshape(*values.shape, 8)].sum(axis=-1, dtype=np.uint8)


def _as_codes(values: np.ndarray) -> np.ndarray:
    """uint64 hashes as faiss's binary codes: 8 bytes a row, most significant first."""
    return np.ascontiguousarray(values.astype(">u8")).view(np.uint8).reshape(-1, 8)


def _range_faiss(query: np.ndarray, base: np.ndarray, below: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexBinaryFlat(64)
    index.add(_as_codes(base))
    lims, dist, ids = index.range_search(_as_codes(query), below)
    rows = np.repeat(np.arange(len(query), dtype=np.int64), np.diff(lims.astype(np.int64)))
    return rows, ids.astype(np.int64), dist.astype(np.int64)


def _range_numpy(query: np.ndarray, base: np.ndarray, below: int,
                 should_stop: StopFn | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    rows, cols, dists = [], [], []
    for start in range(0, len(query), BLOCK):
        if should_stop is not None and should_stop():
            return None
        block = _popcount(query[start:start + BLOCK, None] ^ base[None, :])
        r, c = np.nonzero(block < below)
        rows.append(r + start)
        cols.append(c)
        dists.append(block[r, c].astype(np.int64))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64), np.concatenate(dists)


def have_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _range(query: np.ndarray, base: np.ndarray, threshold: int, should_stop: StopFn | None,
           use_faiss: bool | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Every (query row, base row, distance) with distance <= threshold."""
    if len(query) == 0 or len(base) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    if use_faiss is None:
        use_faiss = have_faiss() and len(query) * len(base) > 1_000_000
    if use_faiss:
        return _range_faiss(query, base, threshold + 1)
    return _range_numpy(query, base, threshold + 1, should_stop)


def crop_threshold_for(threshold: int) -> int:
    """The distance allowed to a grid window: two bits more than to a whole image or centre window."""
    return min(63, threshold + 2)


def near_pairs(
    query: np.ndarray,
    query_ok: np.ndarray,
    base: np.ndarray,
    base_ok: np.ndarray,
    threshold: int,
    *,
    crop_threshold: int | None = None,
    same: bool = False,
    should_stop: StopFn | None = None,
    use_faiss: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(query index, base index, distance) of every near pair, once each, with its smallest distance.

    ``query``/``base``: (n, windows) uint64 hashes; rows where ``*_ok`` is False are ignored.
    ``crop_threshold``: the distance allowed to a grid window (default ``crop_threshold_for(threshold)``).
    ``same``: query and base are one set (pairs i < j only). None when ``should_stop()`` said so.
    """
    crop_threshold = crop_threshold_for(threshold) if crop_threshold is None else crop_threshold
    q_rows = np.flatnonzero(query_ok)
    b_rows = np.flatnonzero(base_ok)
    q, b = query[q_rows], base[b_rows]
    centre = min(GRID_START, q.shape[1])
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    searches = [  # (query windows, base windows, threshold); within one set (same) these cover both ways
        (q[:, :1], b[:, :centre], threshold),  # whole query against the base's whole and centre windows
        (q[:, 1:centre], b[:, :1], threshold),  # the query's centre windows against the base's whole
        (q[:, :1], b[:, centre:], crop_threshold),  # whole query against the base's grid
    ]
    for q_hashes, b_hashes, limit in searches:
        if q_hashes.shape[1] == 0 or b_hashes.shape[1] == 0:
            continue
        hit = _range(q_hashes.reshape(-1), b_hashes.reshape(-1), limit, should_stop, use_faiss)
        if hit is None:
            return None
        found.append((hit[0] // q_hashes.shape[1], hit[1] // b_hashes.shape[1], hit[2]))
    qi = q_rows[np.concatenate([f[0] for f in found])]
    bi = b_rows[np.concatenate([f[1] for f in found])]
    dist = np.concatenate([f[2] for f in found])
    if same:
        keep = qi != bi
        qi, bi, dist = qi[keep], bi[keep], dist[keep]
        qi, bi = np.minimum(qi, bi), np.maximum(qi, bi)
    if len(qi) == 0:
        return qi, bi, dist
    order = np.lexsort((dist, bi, qi))  # by pair, smallest distance first
    qi, bi, dist = qi[order], bi[order], dist[order]
    first = np.ones(len(qi), dtype=bool)
    first[1:] = (qi[1:] != qi[:-1]) | (bi[1:] != bi[:-1])
    return qi[first], bi[first], dist[first]


def groups(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of n items linked by the pairs (left[k], right[k]): a group number per item."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)
