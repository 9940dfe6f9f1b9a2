"""``pacer monitor``: a separate client that copies the server's execution log into its own store.

It talks to the server only over HTTP, so it can run on another machine and outlive the server's
restarts; everything it knows is in one local SQLite file, committed batch by batch.
"""
