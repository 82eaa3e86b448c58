"""Test tooling for the rtp1 library: a small firm (``world``) and the golden
vectors shared with the JavaScript library (``vectors``, ``vectors_verify``)."""
