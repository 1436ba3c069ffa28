"""What every identity provider shares: the identity it vouches for, the protocol a
redirect-based provider implements, and the lookup of the applicant that identity names."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from accounts.models import Applicant
from accounts.services import applicant_get_by_id_number, applicant_user_ensure
from accounts.validators import id_number_clean, mask_id_number
from core.errors import DomainError, NotAllowed

logger = logging.getLogger("anju.identity")


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """A person as an identity provider vouches for them.

    `subject` is the provider's own stable identifier; `id_number` is the resident ID number
    as the provider gave it (not yet normalised). The ID number is left out of `repr` so that
    logging an identity never writes a full ID number.
    """

    provider: str
    subject: str
    id_number: str = field(repr=False)
    real_name: str = ""

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number)


class IdentityProvider(Protocol):
    """A redirect-based provider: send the browser away, get it back with proof.

    `store` is a mapping that survives the round trip (the browser's session); the provider
    keeps what it needs to check the callback there (state, nonce, PKCE verifier, the
    redirect URI it announced). Neither method may run inside a database transaction, because
    both may call the provider over the network.
    """

    name: str  # recorded on the device session

    def is_enabled(self) -> bool: ...

    def begin(
        self,
        *,
        store: MutableMapping[str, Any],
        redirect_uri: str,
        now: datetime | None = None,
    ) -> str:
        """Remember a pending login in `store` and return the URL to send the browser to."""
        ...

    def complete(
        self,
        *,
        store: MutableMapping[str, Any],
        params: Mapping[str, str],
        now: datetime | None = None,
    ) -> VerifiedIdentity:
        """Check the callback `params` against the pending login and return who logged in."""
        ...


def _unknown_applicant() -> DomainError:
    return NotAllowed("identity_unknown_applicant", "未查询到您的选房资格信息，请联系工作人员")


def applicant_for_identity(*, identity: VerifiedIdentity) -> Applicant:
    """Return the applicant whose resident ID number the identity carries, creating the
    applicant's login user on first use (`applicant_user_ensure` locks the applicant row for
    that, in its own short transaction).

    The provider's name is not compared with the registered name: the platform is the
    authority on identity, and names differ in harmless ways (middle dots, full-width
    characters). Raises `identity_unknown_applicant` (forbidden) when no applicant has the
    number, including when the number is not a well-formed resident ID number at all: no
    applicant can hold one of those.
    """
    try:
        number = id_number_clean(identity.id_number)
    except DomainError:
        logger.info("identity from %s: malformed ID number", identity.provider)
        raise _unknown_applicant() from None
    applicant = applicant_get_by_id_number(id_number=number)
    if applicant is None:
        logger.info(
            "identity from %s: no applicant for %s", identity.provider, mask_id_number(number)
        )
        raise _unknown_applicant()
    return applicant_user_ensure(applicant=applicant)
