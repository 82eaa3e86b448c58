"""Threads of a matter's conversation (docs/threads.md).

Items (a thread's opener and its replies, internal notes) are the events
that made them; this package decides who sees which thread, reads pages
and unread counts through the thread index, keeps read marks, receipts and
typing, the firm's tags and the staff activity feed.

Modules:
    sql.py          the thread expression of migration 0010's index, per dialect
    found.py        a thread's opener or an item, and the reads that find them
    openers.py      a worker's memory of thread openers (immutable once found)
    items.py        thread items before the write: the rules and the fields the server sets
    acts.py         edits and deletes, one write transaction each; a delete redacts
    reading.py      a matter's thread list and a thread's byte-bounded pages, as seen by the caller
    tags.py         the firm's internal-only tags and tagging an item (row + ``tag`` event)
    feed.py         the staff activity feed across the reader's matters
    readers.py      who reads a thread: the visibility rule for marks, counts, receipts, typing
    unread.py       unread counts and the first unread item, through the thread index
    reads.py        read marks (forward only) and what a mark publishes after commit
    receipts.py     read receipts as each viewer may see them
    typingrelay.py  typing indicators, relayed and never stored
    liveframes.py   the receipt, typing and unread frames, built once by their publisher
    cursors.py      the read side's cursors: parsed once the matter is known, written per viewer
"""
