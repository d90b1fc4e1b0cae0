"""Values and arbitration on the forum: the moral graph and the cases documents.

:mod:`forum.values.state` turns log events into the pure inputs of
:mod:`raters.moral_graph` and :mod:`raters.arbitration`; :mod:`forum.values.engine`
keeps both documents current off the event loop; :mod:`forum.values.api` serves
them. ``forum verify`` replays the export through the same state.
"""
