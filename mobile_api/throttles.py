"""Per-IP rate limits that fail open when the cache (Redis) is down: the limits that matter
for safety (SMS per phone, per IP, per day) are enforced in the database by sms.services, so
a Redis outage must not turn every login into a 500."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger("anju.api")


class ScopedRateThrottleFailOpen(ScopedRateThrottle):
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, ConnectionError, OSError) as exc:
            logger.warning("throttle cache unavailable, allowing the request: %s", exc)
            return True
