"""``forum bench``: a load generator and the measurements it makes.

Modules: :mod:`.wsclient` (a lean WebSocket client), :mod:`.http` (a lean
HTTP/1.1 client), :mod:`.signing` (pre-signing in processes),
:mod:`.workers` (forked load processes), :mod:`.stats` (latency histograms,
CPU), :mod:`.server` (a forum started for the run, SQLite or a throwaway
PostgreSQL), :mod:`.ingest`, :mod:`.fanout`, :mod:`.query` (the modes),
:mod:`.profile` (py-spy) and :mod:`.report` (JSON reports and comparison).
"""
