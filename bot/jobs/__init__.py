"""Scheduled work: one mechanism for every kind of work kept as rows with a due time.

* :mod:`bot.jobs.queue` - :class:`~bot.jobs.queue.JobQueue`, named jobs on a timer
  (APScheduler interval jobs that say "poll now"), one run of each at a time, one
  error handler, a clean stop; ``leader_only`` for the few jobs that must run in one
  process.
* :mod:`bot.jobs.rows` - :class:`~bot.jobs.rows.RowJob`, rows acted on in the
  transaction that claims them, each in its own savepoint: exactly once, and a
  failing row is recorded with its error without blocking the others (reminders,
  waiting-list holds).
* :mod:`bot.jobs.lease` - :class:`~bot.jobs.lease.Lease`, for work that cannot be
  done inside a transaction (a send to WeChat): the rows are claimed with a lease in
  a short transaction, the lease renewed while the worker works, and each outcome
  recorded on its own (the outbox, broadcast deliveries).
* :mod:`bot.jobs.backoff` - the one backoff computation.
* ``storage.claims`` - the one way rows are claimed: ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, the write lock of ``BEGIN IMMEDIATE`` on SQLite.

Deferred inbound messages use the same pieces through the message ledger
(``bot.pipeline.ledger``: claims with an owner token and a lease on the database clock), and
are run again by the ``deferred-messages`` job.

Why not a job library: see docs/operations.md, "Scheduled work".
"""
