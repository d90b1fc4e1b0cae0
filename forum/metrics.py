"""Prometheus metrics, one registry per app (no global state at import time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("mycelium_events_accepted", "Events committed to the log.", ["kind"], registry=r)
        self.refused = Counter("mycelium_events_refused", "Events refused, by reason.", ["reason"], registry=r)
        self.duplicates = Counter("mycelium_events_duplicate", "Events already in the log.", registry=r)
        self.batch_size = Histogram(
            "mycelium_commit_batch_events", "Events per committed batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000), registry=r,
        )
        self.commit_seconds = Histogram(
            "mycelium_commit_seconds", "Time to commit one batch.",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2), registry=r,
        )
        self.connections = Gauge("mycelium_websocket_connections", "Open WebSocket connections.", registry=r)
        self.subscriptions = Gauge("mycelium_subscriptions", "Open subscriptions.", registry=r)
        self.slow_closed = Counter("mycelium_slow_subscriptions_closed", "Subscriptions closed for falling behind.", registry=r)
        self.replies_closed = Counter(
            "mycelium_connections_closed_replies_piled_up", "WebSocket connections closed (1008) for leaving replies unread.", registry=r
        )
        self.delivered = Counter("mycelium_event_frames_sent", "EVENT frames queued to subscribers.", registry=r)
        self.scores_update_seconds = Histogram(
            "mycelium_scores_update_seconds", "Time to apply one delivered batch to the scores (ledger and running sums).",
            buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1), registry=r,
        )
        self.scores_document_seconds = Histogram(
            "mycelium_scores_document_seconds", "Time to rebuild the whole cheap score document (thread).",
            buckets=(0.001, 0.01, 0.03, 0.1, 0.3, 1, 3, 10), registry=r,
        )
        self.scores_ranking_seconds = Histogram(
            "mycelium_scores_ranking_seconds", "Time to rebuild one score listing order.",
            buckets=(0.0001, 0.001, 0.01, 0.03, 0.1, 0.3, 1, 3), registry=r,
        )
        self.scores_fit_seconds = Histogram(
            "mycelium_scores_fit_seconds", "Time of one background refit (thread), status checkpoints passed included.",
            buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100), registry=r,
        )
        self.scores_replay_seconds = Gauge(
            "mycelium_scores_replay_seconds", "Time the scores engine took to replay the log at start.", registry=r,
        )
        self.state_saved_seq = Gauge(
            "mycelium_state_saved_seq", "Log seq covered by the engine's last state file written.", ["engine"], registry=r,
        )
        self.state_save_seconds = Gauge(
            "mycelium_state_save_seconds", "Time the engine's last state file took to write (serialization and disk).", ["engine"], registry=r,
        )
        self.state_restored_seq = Gauge(
            "mycelium_state_restored_seq", "Log seq of the state file the engine started from (0: it replayed the whole log).", ["engine"], registry=r,
        )
        self.state_verified = Gauge(
            "mycelium_state_verified",
            "1 once the background full replay after a restore matched the restored state (or replaced it), else 0.", ["engine"], registry=r,
        )
        self.state_mismatches = Counter(
            "mycelium_state_mismatches", "Restored states that differed from a full replay of the log (the replay was kept).", ["engine"], registry=r,
        )
        self.head = Gauge("mycelium_log_head_seq", "Largest seq delivered to live subscribers.", registry=r)
