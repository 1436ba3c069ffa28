"""Which backing services answer? Used by scripts/test.sh; prints one word per service."""

from __future__ import annotations

import os
import sys


def postgres(url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
        return True
    except Exception:
        return False


def redis_ok(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


if __name__ == "__main__":
    which = sys.argv[1]
    url = os.environ.get("DATABASE_URL" if which == "postgres" else "REDIS_URL", "")
    ok = postgres(url) if which == "postgres" else redis_ok(url)
    sys.exit(0 if ok else 1)
