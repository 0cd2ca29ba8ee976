"""The message pipeline: from a decoded WeChat message to its recorded reply.

``webhook`` (claim, deadline, middlewares), ``ledger`` (claims and replies, fenced
by an owner token), ``unit_of_work`` (one transaction per message), ``state``
(conversation state, saved compare-and-set), ``resident_locks`` (one resident's
messages one at a time across processes), ``batching`` (group commit). See
docs/architecture.md for the path of a message through them.
"""
