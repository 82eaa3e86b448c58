"""Files of a matter: encrypted attachments, streamed uploads with limits, storage (docs/files.md).

Modules, lowest first (each imports only those above it in this list, and
layers below ``files``: threads, access, events, db and the leaf modules):

* ``storage``     the ``Storage`` contract and ``storage_for`` (the backend from the URL)
* ``localstore``  the local directory: aiofiles into ``tmp/``, moved into place when complete
* ``s3store``     an S3-compatible store: spooled like the local one, then one upload (boto3)
* ``rows``        file ids and the ``files`` rows: lookups, the firm's limits
* ``quota``       a matter's room, reserved under its row lock: a pending row, grown, then stored
* ``upload``      one streamed upload: counted, checked (RTA1, limit, digest), stored or nothing
* ``readable``    who may download a file: the viewers of the item that attaches it
* ``attach``      an item that names files: claimed in the transaction that writes it
"""
