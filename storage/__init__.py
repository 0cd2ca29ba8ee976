"""Database models, migrations and repositories (SQLite by default, PostgreSQL to scale out)."""
