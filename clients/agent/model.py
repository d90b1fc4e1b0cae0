"""What an agent knows from the forum (the :class:`Board`) and its owner's local model.

**The board** holds public information only: the proposals the agent has seen
and the results the forum streamed back about them (SCORES frames, outcome
reports). Everything on it was written by other parties and is treated as
data: text is only tokenized and hashed, numbers are coerced and clipped, and
nothing received is ever followed as an instruction. Several agents on one
connection may share a board, since it holds nothing private.

**The model** (:class:`OwnerModel`) predicts the owner's score for a post, per
criterion and overall, with two scikit-learn ``SGDRegressor`` trained online
(``partial_fit``) on the owner's feedback:

* the *criterion regressor* predicts the owner's score ``s_c`` on each
  criterion ``c``. One regressor serves every criterion: its text features are
  the post's words hashed *together with the criterion* (``HashingVectorizer``
  over tokens ``"c|word"``, plus a per-criterion bias token), so each criterion
  has its own word weights, while the streamed features (below) share theirs;
* the *overall prediction* is the owner-weighted composite ``sum_c w_c s_c``
  of the criterion predictions (``w`` = the profile's normalized weights) plus
  a learned *residual*: the residual regressor, on the post's plain hashed
  words and streamed features, is trained on ``feedback score - composite``.
  The residual is what the stated weights miss.
* once the stream reports the crowd's mean on every profile criterion, the
  *overall prediction* of a model with ``use_stream`` comes instead from the
  per-owner linear model of :mod:`clients.agent.stream_model`: the owner's
  feedback regressed on the forum's per-criterion means (every criterion the
  stream reports) and outcome features, with the stated weights as the prior.
  (for the posts the stream reports on every profile criterion). Published
  per-criterion scores still come from the criterion regressor; the residual
  regressor is not fitted meanwhile (posts nobody rated yet get the composite).

Streamed features of a post (always 0 for a model built with
``use_stream=False``). A value the forum has not published yet (no rating, no
bridging fit, no outcome) is *imputed*: the mean of that feature over the posts
on the board that have it, so a new post looks average rather than like a post
the forum scored 0. There are no "is present" indicators: with a handful of
training rows they act as spare intercepts and hurt.

=================  ============================================================
``shrunk_mean``    the forum's shrunk mean overall score
``bridging``       the bridging score (0 until fitted)
``tried``          communities that reported on it: ``log1p(n) / log1p(12)``
                   (0, not imputed, when none did)
``success``        smoothed success rate minus 0.5 (0, not imputed, with no
                   completed report)
``effect``         mean over the outcome's metrics of the pooled relative change
                   (positive = better), times 2, clipped to [-2, 2]
``criterion``      criterion regressor only: the forum's mean score on *this*
                   criterion
``forum_overall``  residual regressor only: the forum's per-criterion means
                   combined with the owner's weights
=================  ============================================================

Training: every time the owner gives feedback, and whenever the agent refits
because new results arrived, each regressor makes ``EPOCHS`` (5) shuffled
passes of ``partial_fit`` over the owner's whole feedback history (one row per
scored criterion, one overall row per piece of feedback), with the features as
they are *now*; the residual targets use the criterion predictions after the
criterion regressor's pass. Constant learning rate ``ETA0`` (0.1), L2 penalty
``ALPHA`` (0.01: it also pulls back weights on feature directions the few rows
no longer pin down as the streamed values move).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDRegressor

from clients.agent.owner import Feedback
from clients.agent.stream_model import StreamModel
from forum.protocol.events import Event
from raters.outcomes import summarize_outcomes

__all__ = [
    "Board",
    "OwnerModel",
    "Post",
    "Prediction",
    "Results",
]

TEXT_FEATURES: Final = 2**12
"""Hashed text dimensions (per model; collisions are harmless at this vocabulary size)."""
EPOCHS: Final = 5
ETA0: Final = 0.1
ALPHA: Final = 1e-2
EFFECT_SCALE: Final = 2.0

SHARED_FEATURES: Final = ("shrunk_mean", "bridging", "tried", "success", "effect")
CRITERION_FEATURES: Final = (*SHARED_FEATURES, "criterion")
OVERALL_FEATURES: Final = (*SHARED_FEATURES, "forum_overall")

_WORD = re.compile(r"(?u)\b[a-z][a-z0-9]+\b")


def _identity(tokens: Any) -> Any:
    return tokens


def _num(x: Any, lo: float = -1.0, hi: float = 1.0) -> float | None:
    """A finite number from untrusted data, clipped to [lo, hi]; None otherwise."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    v = float(x)
    if not math.isfinite(v):
        return None
    return min(hi, max(lo, v))


@dataclass(frozen=True, slots=True)
class Post:
    """A proposal as the agent sees it. ``tokens`` are its words, lowercased."""

    id: str
    author: str
    title: str
    created_at: int
    tokens: tuple[str, ...]

    @classmethod
    def from_event(cls, event: Event) -> Post:
        b = event.body
        text = " ".join(
            [
                str(b.get("title", "")),
                str(b.get("summary", "")),
                str(b.get("text", "")),
                " ".join(b.get("tags", ())),
            ]
        )
        stop = _stop_words()
        tokens = tuple(t for t in _WORD.findall(text.lower()) if t not in stop)
        return cls(event.id, event.author, str(b.get("title", "")), event.created_at, tokens)


_STOP: frozenset[str] | None = None


def _stop_words() -> frozenset[str]:
    global _STOP
    if _STOP is None:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        _STOP = frozenset(ENGLISH_STOP_WORDS)
    return _STOP


@dataclass(slots=True)
class Results:
    """The streamed results about one post (from SCORES frames and outcome reports)."""

    count: int = 0
    mean: float | None = None
    shrunk_mean: float | None = None
    protected_mean: float | None = None
    """The sybil-protected mean (``protected.mean``; None until a fit covers the post)."""
    criteria: dict[str, float] = field(default_factory=dict)
    bridging: float | None = None
    consensus: float | None = None
    communities: int = 0
    completed: int = 0
    success_rate: float | None = None
    effect: float | None = None
    as_of_seq: int = 0

    def update_from_scores(self, view: Mapping[str, Any]) -> None:
        """Take what a SCORES frame says (untrusted: every field checked and clipped)."""
        seq = view.get("as_of_seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            if seq < self.as_of_seq:
                return  # an older document than the one we hold
            self.as_of_seq = seq
        count = view.get("count")
        self.count = (
            int(count)
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0
            else 0
        )
        self.mean = _num(view.get("mean"))
        # the sybil-protected shrunk mean when the fit covers the post, else the raw one
        prot = view.get("protected")
        prot = prot if isinstance(prot, Mapping) else {}
        self.protected_mean = _num(prot.get("mean"))
        shrunk = prot.get("shrunk_mean")
        self.shrunk_mean = _num(shrunk if shrunk is not None else view.get("shrunk_mean"))
        crit = view.get("criteria")
        self.criteria = {}
        if isinstance(crit, Mapping):
            for name, c in list(crit.items())[:64]:
                if (
                    isinstance(name, str)
                    and isinstance(c, Mapping)
                    and (m := _num(c.get("mean"))) is not None
                ):
                    self.criteria[name] = m
        b = view.get("bridging")
        self.bridging = _num(b.get("score")) if isinstance(b, Mapping) else None
        g = view.get("groups")
        self.consensus = _num(g.get("consensus"), 0.0, 1.0) if isinstance(g, Mapping) else None
        o = view.get("outcomes")
        if isinstance(o, Mapping):
            self._take_outcomes(o)

    def _take_outcomes(self, o: Mapping[str, Any]) -> None:
        n = o.get("communities")
        self.communities = (
            int(n) if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0
        )
        done = o.get("completed")
        self.completed = (
            int(done) if isinstance(done, int) and not isinstance(done, bool) and done >= 0 else 0
        )
        self.success_rate = _num(o.get("success_rate"), 0.0, 1.0)
        means = []
        metrics = o.get("metrics")
        if isinstance(metrics, list):
            for m in metrics[:64]:
                if isinstance(m, Mapping) and (v := _num(m.get("mean"), -10.0, 10.0)) is not None:
                    means.append(v)
        self.effect = float(np.mean(means)) if means else None

    def features(self) -> list[float]:
        """The shared streamed features, in :data:`SHARED_FEATURES` order (NaN = not known yet)."""
        nan = math.nan
        return [
            self.shrunk_mean if self.shrunk_mean is not None and self.count > 0 else nan,
            self.bridging if self.bridging is not None else nan,
            math.log1p(min(self.communities, 1000)) / math.log1p(12),
            (self.success_rate - 0.5) if self.success_rate is not None and self.completed else 0.0,
            max(-2.0, min(2.0, EFFECT_SCALE * self.effect)) if self.effect is not None else nan,
        ]


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's prediction of the owner's scores for one post."""

    overall: float
    criteria: Mapping[str, float]


class Board:
    """Public knowledge: posts seen and results streamed, with cached feature matrices.

    Row ``i`` of every matrix is post ``order[i]``. Text matrices are rebuilt
    when posts arrive; streamed matrices when results change (``version``).
    """

    def __init__(self, *, n_features: int = TEXT_FEATURES) -> None:
        self.n_features = n_features
        self.posts: dict[str, Post] = {}
        self.order: list[str] = []
        self.index: dict[str, int] = {}
        self.results: dict[str, Results] = {}
        self.reports: dict[str, dict[str, dict[str, Any]]] = {}
        self.version = 0
        self._hv = HashingVectorizer(
            n_features=n_features, analyzer=_identity, alternate_sign=False, norm="l2"
        )
        self._hv_raw = HashingVectorizer(
            n_features=n_features, analyzer=_identity, alternate_sign=False, norm=None
        )
        self._text: dict[str | None, sp.csr_matrix] = {}
        self._shared: tuple[int, np.ndarray] | None = None
        self._crit: dict[str, tuple[int, np.ndarray]] = {}
        self._stack_refs: list[str] = []
        self._stack: tuple[tuple[int, int], sp.csr_matrix, dict[str | None, int]] | None = None

    # ------------------------------------------------------------------ input

    def add_proposal(self, event: Event) -> Post | None:
        """Record a proposal (returns it; None if already known or not a proposal)."""
        if event.kind != "proposal" or event.id in self.posts:
            return None
        post = Post.from_event(event)
        self.posts[post.id] = post
        self.index[post.id] = len(self.order)
        self.order.append(post.id)
        self.results.setdefault(post.id, Results())
        for key, mat in list(self._text.items()):
            self._text[key] = sp.vstack([mat, self._text_rows([post], key)]).tocsr()
        self.version += 1
        return post

    def add_scores(self, view: Mapping[str, Any]) -> str | None:
        """Record a SCORES view; returns its target when the target is a known post."""
        target = view.get("target") if isinstance(view, Mapping) else None
        if not isinstance(target, str) or target not in self.posts:
            return None
        self.results[target].update_from_scores(view)
        self.version += 1
        return target

    def add_outcome(self, event: Event) -> str | None:
        """Record an outcome report; until the forum's summary arrives, summarize locally."""
        if event.kind != "outcome":
            return None
        proposal = event.body.get("proposal")
        if proposal not in self.posts:
            return None
        reports = self.reports.setdefault(proposal, {})
        reports[event.id] = {
            "community": event.author,
            "status": event.body["status"],
            "verdict": event.body["verdict"],
            "metrics": [m for m in event.body["metrics"] if m.get("observed") is not None],
            "seq": event.created_at,
        }
        res = self.results[proposal]
        summary = summarize_outcomes(list(reports.values()))
        if summary.communities > res.communities:
            res.communities = summary.communities
            res.completed = summary.completed
            res.success_rate = summary.success_rate
            means = [m.mean for m in summary.metrics if m.mean is not None]
            res.effect = float(np.mean(means)) if means else res.effect
            self.version += 1
        return proposal

    # ------------------------------------------------------------------ features

    def _text_rows(self, posts: Sequence[Post], criterion: str | None) -> sp.csr_matrix:
        if criterion is None:
            return self._hv.transform([list(p.tokens) for p in posts])
        prefixed = self._hv.transform([[f"{criterion}|{t}" for t in p.tokens] for p in posts])
        bias = self._hv_raw.transform([[f"{criterion}|<bias>"] for _ in posts])
        return (prefixed + bias).tocsr()

    def text(self, criterion: str | None = None) -> sp.csr_matrix:
        """Hashed words of every post (``criterion`` given: crossed with it, plus its bias)."""
        mat = self._text.get(criterion)
        if mat is None:
            posts = [self.posts[i] for i in self.order]
            mat = (
                self._text_rows(posts, criterion) if posts else sp.csr_matrix((0, self.n_features))
            )
            self._text[criterion] = mat
        return mat

    def text_stack(self, refs: Iterable[str]) -> tuple[sp.csr_matrix, dict[str | None, int]]:
        """Text matrices stacked: row ``offsets[c] + i`` is post ``i`` crossed with criterion ``c``,
        row ``offsets[None] + i`` its plain words. ``refs`` joins the criteria already stacked."""
        for ref in refs:
            if ref not in self._stack_refs:
                self._stack_refs.append(ref)
                self._stack = None
        key = (len(self.order), len(self._stack_refs))
        if self._stack is None or self._stack[0] != key:
            n = len(self.order)
            blocks: list[str | None] = [None, *self._stack_refs]
            offsets = {ref: i * n for i, ref in enumerate(blocks)}
            self._stack = (
                key,
                sp.vstack([self.text(ref) for ref in blocks], format="csr"),
                offsets,
            )
        return self._stack[1], self._stack[2]

    def shared(self) -> np.ndarray:
        """Shared streamed features of every post (rows), :data:`SHARED_FEATURES` columns.

        A value not known yet (no rating, no bridging fit, no outcome) is the
        mean of that column over the posts that have it (0 when none has), so a
        new post looks average, not like a post the forum scored 0.
        """
        if self._shared is None or self._shared[0] != self.version:
            rows = [self.results[i].features() for i in self.order]
            arr = _impute(np.asarray(rows, dtype=float).reshape(len(rows), len(SHARED_FEATURES)))
            self._shared = (self.version, arr)
        return self._shared[1]

    def criterion_means(self, criterion: str) -> np.ndarray:
        """The forum's mean score on ``criterion`` of every post; unknown ones imputed like :meth:`shared`."""
        cached = self._crit.get(criterion)
        if cached is None or cached[0] != self.version:
            arr = np.full((len(self.order), 1), np.nan)
            for i, pid in enumerate(self.order):
                m = self.results[pid].criteria.get(criterion)
                if m is not None:
                    arr[i, 0] = m
            cached = (self.version, _impute(arr))
            self._crit[criterion] = cached
        return cached[1]


def _impute(arr: np.ndarray) -> np.ndarray:
    """Replace NaN by the mean of the known values of its column (0 when the column has none)."""
    missing = np.isnan(arr)
    if missing.any():
        known = (~missing).sum(axis=0)
        means = np.where(known > 0, np.nansum(arr, axis=0) / np.maximum(known, 1), 0.0)
        arr = np.where(missing, means, arr)
    return arr


def _regressor() -> SGDRegressor:
    return SGDRegressor(
        loss="squared_error",
        penalty="l2",
        alpha=ALPHA,
        learning_rate="constant",
        eta0=ETA0,
        shuffle=False,  # rows come shuffled (see OwnerModel.learn)
        random_state=None,  # unused without shuffling; an int would cost a new RandomState per call
    )


def rows_with_dense(text: sp.csr_matrix, idx: np.ndarray, dense: np.ndarray) -> sp.csr_matrix:
    """``hstack([text[idx], dense])`` as one CSR matrix, built directly (fast for small ``idx``)."""
    idx = np.asarray(idx, dtype=np.int64)
    n, k = len(idx), dense.shape[1]
    starts = text.indptr[idx].astype(np.int64)
    lens = text.indptr[idx + 1].astype(np.int64) - starts
    row_len = lens + k
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=indptr[1:])
    total = int(lens.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
    src = np.repeat(starts, lens) + offsets
    dst_text = np.repeat(indptr[:-1], lens) + offsets
    dst_dense = (indptr[:-1] + lens)[:, None] + np.arange(k)
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float64)
    indices[dst_text] = text.indices[src]
    data[dst_text] = text.data[src]
    indices[dst_dense] = text.shape[1] + np.arange(k)
    data[dst_dense] = dense
    return sp.csr_matrix((data, indices, indptr.astype(np.int32)), shape=(n, text.shape[1] + k))


N_CRITERION: Final = len(CRITERION_FEATURES)
N_OVERALL: Final = len(OVERALL_FEATURES)


class OwnerModel:
    """The owner's local model (see the module doc): a criterion and a residual regressor.

    ``weights`` are the profile's normalized criterion weights; ``use_stream``
    False gives the otherwise identical model that ignores every streamed result.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        use_stream: bool = True,
        seed: int = 0,
        epochs: int = EPOCHS,
    ) -> None:
        self.weights = dict(weights)
        self.use_stream = use_stream
        self.epochs = epochs
        self.seed = seed
        self.criterion_regressor = _regressor()
        self.residual_regressor = _regressor()
        self.fitted_criteria = False
        self.fitted_residual = False
        self.trained_on = 0
        self.fits = 0
        self.stream_model = StreamModel()
        self._text_cache: dict[str | None, tuple[tuple[int, int, int], np.ndarray]] = {}

    # ------------------------------------------------------------------ features

    def _criterion_dense(self, board: Board, criterion: str) -> np.ndarray:
        if not self.use_stream:
            return np.zeros((len(board.order), N_CRITERION))
        return np.hstack([board.shared(), board.criterion_means(criterion)])

    def _overall_dense(self, board: Board) -> np.ndarray:
        n = len(board.order)
        if not self.use_stream:
            return np.zeros((n, N_OVERALL))
        forum_overall = np.zeros(n)
        for ref, w in self.weights.items():
            forum_overall += w * board.criterion_means(ref)[:, 0]
        return np.hstack([board.shared(), forum_overall[:, None]])

    def _linear(
        self, regressor: SGDRegressor, board: Board, ref: str | None, dense: np.ndarray
    ) -> np.ndarray:
        """``regressor.predict`` on ``[text | dense]`` for every post, the text part cached between fits."""
        nt = board.n_features
        coef = regressor.coef_
        key = (id(board), len(board.order), self.fits)
        cached = self._text_cache.get(ref)
        if cached is None or cached[0] != key:
            cached = (key, np.asarray(board.text(ref) @ coef[:nt]).ravel())
            self._text_cache[ref] = cached
        return cached[1] + dense @ coef[nt:] + regressor.intercept_[0]

    # ------------------------------------------------------------------ predicting

    def predict_criteria(
        self, board: Board, refs: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Per-criterion predictions for every post on the board: ``{ref: array}``."""
        out = {}
        for ref in refs if refs is not None else self.weights:
            if not self.fitted_criteria or not board.order:
                out[ref] = np.zeros(len(board.order))
            else:
                raw = self._linear(
                    self.criterion_regressor, board, ref, self._criterion_dense(board, ref)
                )
                out[ref] = np.clip(raw, -1.0, 1.0)
        return out

    def predict_all(self, board: Board) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(overall, {ref: criterion scores})`` for every post on the board (in ``board.order``)."""
        crit = self.predict_criteria(board)
        overall = self._composite(crit, len(board.order))
        if self.fitted_residual and board.order:
            overall = overall + self._linear(
                self.residual_regressor, board, None, self._overall_dense(board)
            )
        overall = np.clip(overall, -1.0, 1.0)
        streamed = self.stream_model.predict(board) if self.use_stream else None
        if streamed is not None:
            overall = np.where(streamed[1], streamed[0], overall)
        return overall, crit

    def predict(self, board: Board, target: str) -> Prediction:
        overall, crit = self.predict_all(board)
        i = board.index[target]
        return Prediction(float(overall[i]), {k: float(v[i]) for k, v in crit.items()})

    def _composite(self, crit: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        total = np.zeros(n)
        for ref, w in self.weights.items():
            total += w * crit[ref]
        return total

    # ------------------------------------------------------------------ learning

    def learn(self, board: Board, history: Sequence[Feedback]) -> None:
        """``EPOCHS`` shuffled passes of ``partial_fit`` over the feedback history, current features."""
        rows = [f for f in history if f.target in board.index]
        if not rows:
            return
        rng = np.random.default_rng([self.seed, len(rows), self.fits])
        # criterion regressor: one row per (feedback, criterion), every criterion in one regressor
        refs = sorted({c for f in rows for c in f.criteria})
        if refs:
            stack, offsets = board.text_stack(refs)
            gidx: list[np.ndarray] = []
            dense: list[np.ndarray] = []
            ys: list[float] = []
            for ref in refs:
                idx = np.asarray([board.index[f.target] for f in rows if ref in f.criteria])
                gidx.append(offsets[ref] + idx)
                dense.append(self._criterion_dense(board, ref)[idx])
                ys.extend(f.criteria[ref] for f in rows if ref in f.criteria)
            g, d, y = np.concatenate(gidx), np.vstack(dense), np.asarray(ys)
            order = self._epochs(len(y), rng)
            self._partial_fit(
                self.criterion_regressor, rows_with_dense(stack, g[order], d[order]), y[order]
            )
            self.fitted_criteria = True
            self.fits += 1
        self.trained_on = len(rows)
        if self.use_stream:
            self.stream_model.fit(board, self.weights, rows)
            if self.stream_model.coef is not None:
                # the stream model predicts the overall score: the residual regressor is not used
                self.fits += 1
                return
        # residual regressor: the overall score minus the owner-weighted composite
        idx = np.asarray([board.index[f.target] for f in rows])
        composite = self._composite(self.predict_criteria(board), len(board.order))[idx]
        y = np.asarray([f.score for f in rows]) - composite
        order = self._epochs(len(idx), rng)
        x = rows_with_dense(board.text(None), idx[order], self._overall_dense(board)[idx[order]])
        self._partial_fit(self.residual_regressor, x, y[order])
        self.fitted_residual = True
        self.fits += 1

    @staticmethod
    def _partial_fit(regressor: SGDRegressor, x: sp.csr_matrix, y: np.ndarray) -> None:
        # The rows are built here from checked, finite numbers: skip sklearn's per-call checks.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            regressor.partial_fit(x, y)

    def _epochs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Row order for ``epochs`` shuffled passes over ``n`` rows."""
        return np.concatenate([rng.permutation(n) for _ in range(self.epochs)])
