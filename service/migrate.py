"""Apply the yoyo migrations in `migrations/` (`make migrate`).

Run as `python -m service.migrate`: applies what is pending to DATABASE_URL,
and does nothing when nothing is pending.
"""

from __future__ import annotations

import sys
from pathlib import Path

from yoyo import get_backend, read_migrations

from service.config import Config, ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def yoyo_url(database_url: str) -> str:
    """yoyo names the psycopg 3 driver in the URL scheme."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url.removeprefix(prefix)
    return database_url


def apply_migrations(database_url: str) -> list[str]:
    """Apply pending migrations under yoyo's lock; the ids applied, in order."""
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [migration.id for migration in pending]
    finally:
        backend.connection.close()


def main() -> int:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    if not config.database_url:
        print("migrate: DATABASE_URL is not set", file=sys.stderr)
        return 2
    applied = apply_migrations(config.database_url)
    print(
        f"migrate: applied {len(applied)} migration(s){': ' if applied else ''}{', '.join(applied)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
