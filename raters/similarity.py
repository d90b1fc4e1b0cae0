"""Communities like yours: a deterministic similarity between communities, and
per-proposal outcome summaries over each community's most similar peers.

Similarity of two communities a, b is a weighted sum of six parts, each in [0, 1]:

============  ======  =====================================================================
part          weight  value (0 when either side lacks the information)
============  ======  =====================================================================
type          0.30    1 if both declared the same ``type``
size          0.15    ``max(0, 1 - |log10(size_a) - log10(size_b)| / 2)`` (a factor of 100 -> 0)
region        0.10    1 for the same ISO 3166 code, 0.5 for the same country
tags          0.10    Jaccard index of the tag sets
adopted       0.10    Jaccard index of the proposals each ever adopted
results       0.25    agreement of their results on proposals both reported on: per shared
                      proposal 1 (same verdict), 0.5 (one ``mixed``), 0 (success vs failure),
                      averaged, times ``min(1, shared / RESULTS_FULL)``
============  ======  =====================================================================

``similarity = sum(weight * part)`` (the weights sum to 1).  Missing information
counts as *dissimilar*, never as a match, so a community that declares nothing is
like no one; and the heaviest single part is the track record (``results``), which a
freshly made key cannot have: a crowd of new keys copying your attributes reaches
at most 0.75, below a peer with the same attributes and a shared record.

A community's **neighbours** are the other communities with similarity at least
``MIN_SIMILARITY``, most similar first (ties by did), at most ``NEIGHBOURS_KEPT``.
For a proposal, its **like-yours summary** pools the latest report of each of the
first ``LIKE_YOURS_K`` neighbours that reported on it, weighted by similarity ``w``,
and shrinks it towards the global rate ``g = (successes + 1) / (completed + 2)`` over
every community's latest report (the global summary of :mod:`raters.outcomes`):
``success_rate = (sum w*success + PRIOR * g) / (sum w*completed + PRIOR)``.  With
no similar experience it *is* the global rate; each similar completed trial pulls
it towards what happened to communities like yours.  A community's own reports
never count in its own summary.  (Measured in the demo: shrinking towards the
global rate with ``PRIOR = 1`` beat a Beta(1, 1) prior, which two or three
fractional neighbour reports cannot overcome; docs/demo.md.)

A report's **verdict value**: the latest report per (community, proposal) (greatest
seq) whose verdict is ``success``, ``mixed`` or ``failure``.

Pure: numpy and scipy only, deterministic (sorted dids, stable sorts), blockwise so
memory stays O(block * n).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # scipy.sparse is imported on first use: 0.2-0.4 s of every server start
    from scipy import sparse

ALGORITHM = "mycelium-similarity"
VERSION = "1.0"
WEIGHTS: Mapping[str, float] = {"type": 0.30, "size": 0.15, "region": 0.10, "tags": 0.10, "adopted": 0.10, "results": 0.25}
MIN_SIMILARITY = 0.5
NEIGHBOURS_KEPT = 20
LIKE_YOURS_K = 8
RESULTS_FULL = 3
PRIOR = 1.0
SIZE_DECADES = 2.0
VERDICT_VALUE: Mapping[str, int] = {"success": 0, "mixed": 1, "failure": 2}
_BLOCK = 512


@dataclass(frozen=True)
class Community:
    """What similarity looks at: the current profile's attributes and the community's history.

    ``adopted``: proposals it ever adopted; ``results``: proposal -> verdict of its latest
    report with a verdict of success, mixed or failure.
    """

    did: str
    type: str | None = None
    size: int | None = None
    region: str | None = None
    tags: tuple[str, ...] = ()
    adopted: frozenset[str] = frozenset()
    results: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LikeYours:
    """A like-yours outcome summary of one proposal for one community (``global_rate``: g)."""

    communities: tuple[str, ...]
    similarity: tuple[float, ...]
    completed: float
    successes: float
    success_rate: float
    global_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "communities": list(self.communities),
            "similarity": [round(s, 6) for s in self.similarity],
            "completed": round(self.completed, 6),
            "successes": round(self.successes, 6),
            "success_rate": round(self.success_rate, 6),
            "global_rate": round(self.global_rate, 6),
        }


def _ids(values: Sequence[str | None]) -> npt.NDArray[np.int64]:
    index: dict[str, int] = {}
    return np.array([-1 if v is None else index.setdefault(v, len(index)) for v in values], np.int64)


def _incidence(rows: Sequence[Iterable[str]], n: int) -> sparse.csr_matrix:
    from scipy import sparse

    cols: dict[str, int] = {}
    r, c = [], []
    for i, items in enumerate(rows):
        for item in sorted(set(items)):
            r.append(i)
            c.append(cols.setdefault(item, len(cols)))
    return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, max(len(cols), 1)))


def _jaccard(m: sparse.csr_matrix, counts: npt.NDArray[np.float64], rows: slice) -> npt.NDArray[np.float64]:
    inter = (m[rows] @ m.T).toarray()
    union = counts[rows, None] + counts[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def similarity_rows(communities: Sequence[Community], rows: slice) -> npt.NDArray[np.float64]:
    """Similarity of the communities in ``rows`` to every community (order of the input)."""
    from scipy import sparse

    n = len(communities)
    types = _ids([c.type for c in communities])
    regions = _ids([c.region for c in communities])
    countries = _ids([c.region[:2] if c.region else None for c in communities])
    size = np.array([math.log10(c.size) if c.size else np.nan for c in communities])
    tags = _incidence([c.tags for c in communities], n)
    adopted = _incidence([c.adopted for c in communities], n)
    tag_n = np.asarray(tags.sum(axis=1)).ravel()
    adopted_n = np.asarray(adopted.sum(axis=1)).ravel()
    # one verdict matrix per value (success, mixed, failure) over a shared proposal column space
    keys = sorted({p for c in communities for p, v in c.results.items() if v in VERDICT_VALUE})
    col = {p: j for j, p in enumerate(keys)}
    mats = []
    for k in range(3):
        r, cc = [], []
        for i, c in enumerate(communities):
            for p, v in c.results.items():
                if VERDICT_VALUE.get(v) == k:
                    r.append(i)
                    cc.append(col[p])
        mats.append(sparse.csr_matrix((np.ones(len(r)), (r, cc)), shape=(n, max(len(keys), 1))))
    s, x, f = mats
    known = s + x + f

    t = types[rows]
    part_type = ((t[:, None] == types[None, :]) & (t[:, None] >= 0)).astype(float)
    d = np.abs(size[rows, None] - size[None, :])
    part_size = np.where(np.isnan(d), 0.0, np.clip(1.0 - d / SIZE_DECADES, 0.0, 1.0))
    rg, ct = regions[rows], countries[rows]
    part_region = np.where((rg[:, None] == regions[None, :]) & (rg[:, None] >= 0), 1.0,
                           np.where((ct[:, None] == countries[None, :]) & (ct[:, None] >= 0), 0.5, 0.0))
    part_tags = _jaccard(tags, tag_n, rows)
    part_adopted = _jaccard(adopted, adopted_n, rows)
    shared = (known[rows] @ known.T).toarray()
    same = (s[rows] @ s.T + x[rows] @ x.T + f[rows] @ f.T).toarray()
    half = (s[rows] @ x.T + x[rows] @ s.T + f[rows] @ x.T + x[rows] @ f.T).toarray()
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(shared > 0, (same + 0.5 * half) / np.maximum(shared, 1), 0.0)
    part_results = agreement * np.minimum(1.0, shared / RESULTS_FULL)
    return (
        WEIGHTS["type"] * part_type
        + WEIGHTS["size"] * part_size
        + WEIGHTS["region"] * part_region
        + WEIGHTS["tags"] * part_tags
        + WEIGHTS["adopted"] * part_adopted
        + WEIGHTS["results"] * part_results
    )


def neighbours(communities: Sequence[Community]) -> dict[str, list[tuple[str, float]]]:
    """Every community's neighbours: (did, similarity), most similar first, ties by did."""
    comms = sorted(communities, key=lambda c: c.did)
    dids = [c.did for c in comms]
    out: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, len(comms), _BLOCK):
        rows = slice(start, min(start + _BLOCK, len(comms)))
        sim = np.round(similarity_rows(comms, rows), 9)  # rounded: the order is platform-stable
        for r, i in enumerate(range(rows.start, rows.stop)):
            sim[r, i] = -1.0  # never one's own neighbour
            cand = np.flatnonzero(sim[r] >= MIN_SIMILARITY)
            order = cand[np.lexsort((cand, -sim[r, cand]))][:NEIGHBOURS_KEPT]
            out[dids[i]] = [(dids[j], float(sim[r, j])) for j in order]
    return out


def global_rate(reports: Mapping[str, tuple[str, str | None]]) -> float:
    """``(successes + 1) / (completed + 2)`` over every community's latest report."""
    completed = [v for s, v in reports.values() if s == "completed"]
    return (sum(v == "success" for v in completed) + 1.0) / (len(completed) + 2.0)


def like_yours(
    neighbours_of: Sequence[tuple[str, float]], reports: Mapping[str, tuple[str, str | None]]
) -> LikeYours | None:
    """The like-yours summary of one proposal from one community's neighbours.

    ``reports``: community -> (status, verdict) of its latest report on the proposal.
    None when no neighbour reported on it.
    """
    g = global_rate(reports)
    used = [(d, s) for d, s in neighbours_of if d in reports][:LIKE_YOURS_K]
    if not used:
        return None
    completed = sum(s for d, s in used if reports[d][0] == "completed")
    successes = sum(s for d, s in used if reports[d][0] == "completed" and reports[d][1] == "success")
    return LikeYours(
        communities=tuple(d for d, _ in used),
        similarity=tuple(s for _, s in used),
        completed=completed,
        successes=successes,
        success_rate=(successes + PRIOR * g) / (completed + PRIOR),
        global_rate=g,
    )


def like_yours_document(
    communities: Sequence[Community], reports: Mapping[str, Mapping[str, tuple[str, str | None]]]
) -> dict[str, Any]:
    """Neighbours of every community and, per proposal, the like-yours summary of every
    community with a neighbour that reported on it.

    ``reports``: proposal -> community -> (status, verdict) of its latest report.
    """
    nb = neighbours(communities)
    per_proposal: dict[str, dict[str, Any]] = {}
    for proposal in sorted(reports):
        reps = reports[proposal]
        row = {}
        for did in sorted(nb):
            summary = like_yours(nb[did], reps)
            if summary is not None:
                row[did] = summary.to_dict()
        if row:
            per_proposal[proposal] = row
    return {
        "algorithm": ALGORITHM,
        "version": VERSION,
        "neighbours": {d: [[o, round(s, 6)] for o, s in v] for d, v in sorted(nb.items()) if v},
        "like_yours": per_proposal,
    }
