"""Parse a Polis ``participants-votes.csv`` export into :class:`raters.ratings.Ratings`.

Pure: takes the CSV *text*, never opens files.  Used by the tests and the benchmark to
run :func:`raters.groups.opinion_groups` on real conversations.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from raters.ratings import IntArray, Ratings

_META = frozenset(
    {"participant", "xid", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree"}
)


@dataclass(frozen=True)
class PolisConversation:
    """A Polis conversation as ratings.

    Fields:
        ratings: rater = row position of the participant, target = position of the
            comment column; score = the vote (1 agree, -1 disagree, 0 pass).
        participant_ids: int64 (n_raters,), Polis participant id of each rater.
        comment_ids: tuple of the comment ids (column headers), one per target.
        group_id: int64 (n_raters,), Polis' ``group-id``; -1 where empty.
    """

    ratings: Ratings
    participant_ids: IntArray
    comment_ids: tuple[str, ...]
    group_id: IntArray


def parse_participants_votes(text: str) -> PolisConversation:
    """Parse the text of a ``participants-votes.csv`` file.

    Input: the CSV text (header: participant, [xid,] group-id, n-comments, n-votes,
    n-agree, n-disagree, then one column per comment id; empty cell = no vote).
    Output: :class:`PolisConversation`.  Raises ``ValueError`` on a vote outside
    {-1, 0, 1}.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    comment_cols = [i for i, h in enumerate(header) if h not in _META]
    pcol = header.index("participant")
    gcol = header.index("group-id")
    raters: list[int] = []
    targets: list[int] = []
    scores: list[float] = []
    pids: list[int] = []
    gids: list[int] = []
    for row_no, row in enumerate(reader):
        if not row:
            continue
        pids.append(int(row[pcol]))
        gids.append(int(row[gcol]) if row[gcol] != "" else -1)
        for j, col in enumerate(comment_cols):
            cell = row[col] if col < len(row) else ""
            if cell != "":
                v = float(cell)
                if v not in (-1.0, 0.0, 1.0):
                    raise ValueError(f"vote {cell!r} is not -1, 0 or 1")
                raters.append(row_no)
                targets.append(j)
                scores.append(v)
    ratings = Ratings.build(
        np.asarray(raters, dtype=np.int64),
        np.asarray(targets, dtype=np.int64),
        np.asarray(scores, dtype=np.float64),
        len(pids),
        len(comment_cols),
    )
    return PolisConversation(
        ratings=ratings,
        participant_ids=np.asarray(pids, dtype=np.int64),
        comment_ids=tuple(header[i] for i in comment_cols),
        group_id=np.asarray(gids, dtype=np.int64),
    )
