"""The document checklist (docs/documents.md): a firm's document types, each
matter type's default checklist, a matter's checklist with each document's
status, requests and uploads against them, staff decisions, documents the
firm provides, and what blocks the client's next step.

Modules, each one idea, importing only downward (``rows`` first):
``rows`` (ids, limits, the checked parts of a request), ``types`` (a
firm's document types), ``defaults`` (a matter type's default checklist),
``envelopes`` (an item's current upload envelopes, handed out with it),
``items`` (a matter's checklist: read and add), ``changes`` (the status
changes' shared writes: lock, event), ``requests`` (add to portal),
``uploads`` (a client's upload against a request), ``decisions`` (accept,
reject), ``shares`` (a provided document shared), ``blockers`` (the open
requests before the client's next step). Every change takes a unit of work
and returns its events (``Change``), published after the commit.
"""
