"""The phase timeline (docs/threads.md "Phase timeline"): matter types with their
internal phases and client steps (``types``), moving a matter (``change``) and
what staff and clients see of it (``views``)."""
