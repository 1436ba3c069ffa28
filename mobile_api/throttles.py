"""Per-IP rate limits that fail open when the cache (Redis) is down: the limits that matter
for safety (SMS per phone, per IP, per day) are enforced in the database by sms.services, so
a Redis outage must not turn every login into a 500."""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger("anju.api")


class ScopedRateThrottleFailOpen(ScopedRateThrottle):
    # Scopes whose rate has a default here, used when settings name none.
    DEFAULT_RATES = {
        # The face provider's callback, per address, like the payment webhook's: the
        # provider's servers redeliver what we refuse, so generous, but bounded.
        "face_callback": "600/min",
    }

    def get_rate(self):
        # The rates as configured now (DRF binds them once, at import): a settings override
        # applies, and a scope missing from an overriding dict is named, not a KeyError 500.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            if self.scope in self.DEFAULT_RATES:
                return self.DEFAULT_RATES[self.scope]
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}") from None

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, ConnectionError, OSError) as exc:
            logger.warning("throttle cache unavailable, allowing the request: %s", exc)
            return True
