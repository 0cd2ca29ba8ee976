"""Conversations and commands: one router per module, dispatched by ``bot``."""
