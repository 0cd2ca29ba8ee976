"""Test users' password hashes, made once per password and process.

The hash is the production one (argon2id, about 0.13 s): set-ups that create five
users per test paid it five times each, for the same password. Checking a password
at login still costs its full price, as in production.
"""

from __future__ import annotations

from bot.web.auth import hash_password

_made: dict[str, str] = {}


async def password_hash(password: str) -> str:
    if password not in _made:
        _made[password] = await hash_password(password)
    return _made[password]
