"""The staff review inbox (docs/reviews.md).

Every message and document a client sends gets a review date (today, in
the firm's timezone) and a reviewer chosen by the firm's preference
(default: the matter's responsible staff member); the reviewer's inbox
lists what awaits review, with a live count. The server never sees what
was sent: a review holds opaque references to it.

Modules:
    choose.py   the reviewer (firm preference, responsible staff, first org admin) and the day
    rows.py     a review as the API shows it, its labels ("Portal Doc"), the inbox's cursor
    counts.py   a reviewer's open, due and overdue counts
    live.py     ``ReviewCounts``: the staff-only ``reviews`` frame after a change, coalesced
    enqueue.py  queueing in the transaction that records what was sent (the group
                commit's companion, and ``enqueue`` for other writers)
    inbox.py    a staff member's inbox pages and counts
    acts.py     mark reviewed, reassign, change the review date
"""
