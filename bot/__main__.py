"""``python -m bot`` is ``order-menu``."""

from bot.cli import main

main(prog_name="order-menu")
