"""The order domain: the state machine's moves and everything they cause.

* ``domain``: :func:`~bot.orders.domain.transition` and
  :func:`~bot.orders.domain.place_order`, the only ways an order is placed or
  changes status;
* ``effects``: the notifications and reminders a change writes (outbox, reminders);
* ``waitlist``: freed places offered to the waiting list, held, handed on.
"""
