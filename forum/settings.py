"""Every setting of the forum, declared once.

Each field has a name, a default and a description. The same declaration
feeds the environment (``FORUM_<NAME>``), the ``forum serve`` flags, the
well-known document and docs/settings.md (a test fails when one is missing).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from forum.protocol.events import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORUM_", extra="forbid", frozen=True)

    # --- where and what
    host: str = Field("127.0.0.1", description="Address `forum serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `forum serve` listens on; 0 picks a free one.")
    data_dir: Path = Field(Path("./forum-data"), description="Directory for the embedded SQLite database and other state.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database. Unset: SQLite (WAL) at DATA_DIR/forum.db. "
        "For PostgreSQL: postgresql+asyncpg://user:pass@host/db.",
    )
    name: str = Field("Mycelium", description="Name of this forum, shown in pages and the well-known document.")
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/?#\s]+/?$",
        description="Public base URL of this forum (scheme and host, no path), used for every absolute link and redirect. "
        "The Host header of a request never reaches a link; unset: `forum serve` uses the address it listens on.",
    )
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$", description="Log level: debug, info, warning or error.")

    # --- protocol limits
    max_payload_bytes: int = Field(65536, ge=1024, description="Largest payload accepted, in UTF-8 bytes.")
    max_frame_bytes: int = Field(262144, ge=4096, description="Largest WebSocket frame or HTTP body line accepted, in bytes.")
    max_future_ms: int = Field(600_000, ge=0, description="How far created_at may lie in the future, in milliseconds.")
    min_pow_bits: int = Field(0, ge=0, le=64, description="Minimum proof of work: leading zero bits of the event id.")
    max_batch_body_bytes: int = Field(16 * 1024 * 1024, ge=4096, description="Largest body accepted by POST /api/v1/events:batch.")

    # --- abuse limits (0 disables a limit)
    author_rate: float = Field(50.0, ge=0, description="Events per second each author may publish (token bucket refill); 0 = unlimited.")
    author_burst: int = Field(500, ge=1, description="Token bucket size for each author.")
    address_rate: float = Field(1000.0, ge=0, description="Events per second each client address may publish; 0 = unlimited.")
    address_burst: int = Field(10000, ge=1, description="Token bucket size for each client address.")
    max_connections_per_address: int = Field(1000, ge=0, description="Open WebSocket connections per client address; 0 = unlimited.")
    max_subscriptions_per_connection: int = Field(32, ge=1, description="Open subscriptions on one WebSocket connection.")
    rate_token_bytes: int = Field(4096, ge=256, description="Published bytes that cost one more address token: an event costs 1 + its bytes / RATE_TOKEN_BYTES, so a batch costs what its events cost one by one.")
    subscribe_rate: float = Field(5.0, ge=0, description="SUBSCRIBEs per second one connection may send (token bucket refill; a scores subscription costs 4); 0 = unlimited.")
    subscribe_burst: int = Field(40, ge=4, description="SUBSCRIBE token bucket size of one connection.")
    address_subscribe_rate: float = Field(50.0, ge=0, description="SUBSCRIBEs per second all connections of one client address may send together; 0 = unlimited.")
    address_subscribe_burst: int = Field(400, ge=4, description="SUBSCRIBE token bucket size of one client address.")
    subscriber_queue_bytes: int = Field(4 * 1024 * 1024, ge=4096, description="Bytes queued for one subscription before it is closed as too slow (CLOSED error with a resume hint).")
    connection_queue_bytes: int = Field(8 * 1024 * 1024, ge=4096, description="Bytes queued for one WebSocket connection; a live event that does not fit closes its subscription, and the reader reads no more frames until the queue drains.")
    address_queue_bytes: int = Field(64 * 1024 * 1024, ge=0, description="Bytes queued for all WebSocket connections of one client address together; a live event that does not fit closes its subscription; 0 = unlimited.")
    control_queue_bytes: int = Field(1024 * 1024, ge=16384, description="Bytes of unread OK, NOTICE, CLOSED and LIVE frames on one connection before it is closed (1008); the reader stops reading at a quarter of it.")
    connection_frame_rate: float = Field(1000.0, ge=0, description="WebSocket frames per second the server reads from one connection (token bucket refill); past the bucket it stops reading that connection until it refills (back-pressure: nothing is refused); 0 = unlimited.")
    connection_frame_burst: int = Field(4000, ge=1, description="Frame token bucket size of one WebSocket connection.")
    connection_byte_rate: float = Field(8 * 1024 * 1024, ge=0, description="Bytes per second the server reads from one WebSocket connection (token bucket refill); past the bucket it stops reading that connection until it refills; 0 = unlimited.")
    connection_byte_burst: int = Field(32 * 1024 * 1024, ge=65536, description="Byte token bucket size of one WebSocket connection.")
    max_catch_up_reads: int = Field(6, ge=0, description="Catch-up reads (pages of stored events for subscriptions catching up) running at once in one server process; the others wait their turn, so catching-up connections never take every database connection; 0 = no bound.")
    max_catch_up_reads_per_address: int = Field(2, ge=0, description="Catch-up reads the connections of one client address may run at once; their other catch-ups wait (without holding one of the process's reads); 0 = no bound.")
    max_http_connections_per_address: int = Field(256, ge=0, description="Open HTTP connections per client address (WebSockets count apart once upgraded); the next one gets 503 and is closed; 0 = unlimited.")
    address_upgrade_rate: float = Field(50.0, ge=0, description="WebSocket handshakes per second one client address may start (token bucket refill); the next gets 429 with Retry-After and is closed before any WebSocket state is built; 0 = unlimited.")
    address_upgrade_burst: int = Field(200, ge=1, description="WebSocket handshake token bucket size of one client address.")
    http_header_timeout_s: float = Field(10.0, ge=0, description="Seconds a request line and its headers may take to arrive before 408 and close (slowloris); 0 = no limit.")
    http_body_timeout_s: float = Field(30.0, gt=0, description="Seconds a request body may take to arrive where one is read (publish, batch) before 408.")
    address_read_rate: float = Field(2500.0, ge=0, description="Read tokens per second each client address gets for HTTP GETs (token bucket refill): a response costs 1 + its bytes / RATE_TOKEN_BYTES, charged as it is sent; past the bucket 429 with Retry-After (/healthz and /metrics are free); 0 = unlimited.")
    address_read_burst: int = Field(25000, ge=16, description="Read token bucket size of one client address (a 1 MiB page of events costs about 260 tokens, a page of the web a few).")
    max_live_streams: int = Field(5000, ge=1, description="Open /live notification streams in one server process; beyond it 503.")
    max_live_streams_per_address: int = Field(16, ge=1, description="Open /live notification streams per client address; beyond it 429.")
    ingest_queue_bytes: int = Field(64 * 1024 * 1024, ge=1048576, description="Bytes of published events waiting for verification and commit, over every connection; beyond it PUBLISH is refused with rate-limited.")

    # --- processes and ingest
    workers: int = Field(1, ge=1, le=64, description="Server processes sharing the listening socket (and the subscribers). They share the log through the writer lock and, to learn of each other's commits, LISTEN/NOTIFY on PostgreSQL or a watch of the log head on SQLite (SQLITE_POLL_MS).")
    verify_workers: int = Field(2, ge=0, description="Worker processes that parse and verify published events (strict JSON, schema, signature) off the event loop; 0 = one thread in the server process.")
    batch_max_events: int = Field(2000, ge=1, description="Most events the writer commits in one transaction (group commit).")
    sqlite_poll_ms: float = Field(10.0, gt=0, le=1000, description="How often each process on SQLite looks for commits of other processes on the same file (a stat of the write-ahead log; the head is read when it changed).")
    sqlite_synchronous: str = Field("FULL", pattern="^(FULL|NORMAL)$", description="SQLite synchronous mode in WAL: FULL survives power loss, NORMAL only a crash of the process.")

    # --- scores
    scores_interval_s: float = Field(10.0, gt=0, description="Longest time between background refits of bridging, groups and standing when new ratings arrived.")
    scores_min_new_ratings: int = Field(200, ge=1, description="New ratings that trigger a background refit before the interval has passed.")

    state_save_interval_s: float = Field(30.0, ge=0, description="Least seconds between two writes of the scores and values engines' state to DATA_DIR (each engine writes at most every max(this, 10 x its last write's duration), and once right after start-up); at start the forum loads it, replays only the log after it, and checks it against a full replay in the background. 0 = never write (every start replays the whole log).")

    # --- values and arbitration (docs/arbitration.md)
    arbitration_window_scale: float = Field(1.0, gt=0, le=1000, description="Multiplies every arbitration window counted in seqs (established age, assessment, commit, reveal and appeal windows); the cases document states the resulting rules.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'forum.db').resolve()}"

    @property
    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_future_ms=self.max_future_ms,
            min_pow_bits=self.min_pow_bits,
        )
