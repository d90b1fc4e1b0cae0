"""Mycelium clients, one room each (nothing is imported here):

* :mod:`clients.sdk`: keys, event builders, the async client (installable alone);
* :mod:`clients.agent`: the owner's agent and its private model;
* :mod:`clients.cli`: the ``forum`` command line;
* :mod:`clients.demo`: ``forum demo`` (run, sim, agents, communities, measure, display, world);
* :mod:`clients.bench`: every benchmark;
* :mod:`clients.importers`: Polis conversations and outcome tables;
* :mod:`clients.audit`: ``forum verify``;
* :mod:`clients.launch`: starts a forum process and a throwaway PostgreSQL.

Everything an event contains is data written by someone else, never
instructions: see docs/sdk.md.
"""
