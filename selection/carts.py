"""Declarations, the pre-selection and formal carts, entering formal selection, sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from accounts.models import Family
from core.context import RequestContext
from core.errors import Conflict, DomainError, NotAllowed, ValidationFailed
from core.locking import lock_first
from selection.models import CartItem, Declaration, Seat, Session, Unit
from selection.phases import FamilyState, family_state, require_formal, require_preselect
from selection.texts import declaration_text, text_version


class UnitNotFound(DomainError):
    kind = "not_found"
    code = "unit_not_found"
    message = "房源不存在"


def declaration_current(*, state: FamilyState, phase: str) -> tuple[str, str]:
    seat = state.current or state.upcoming
    words = phase
    if seat and seat.session.kind == Session.Kind.SUPPLEMENTARY:
        # the same rules, said as 补选
        words = "supplementary" if phase == Declaration.Phase.FORMAL else "supplementary_pre"
    text = declaration_text(
        words, cart_limit=state.round.cart_limit, window_seconds=state.round.window_seconds
    )
    return text, text_version(text)


def declaration_acknowledge(
    *, family: Family, round_id: int, phase: str, version: str, ctx: RequestContext, now: datetime
) -> Declaration:
    """Record that the applicant ticked 「上述条款，我已阅知」 on the text with `version`.

    Pre-selection's declaration is accepted from the round's pre-selection start until the
    family's session starts; the formal one inside the family's window. Raises the phase
    errors and `declaration_outdated` when the page showed an older text."""
    state = family_state(family=family, round_id=round_id, now=now)
    if phase == Declaration.Phase.PRE:
        require_preselect(state)
        session = state.upcoming.session if state.upcoming else None
    elif phase == Declaration.Phase.FORMAL:
        session = require_formal(state).session
    else:
        raise ValidationFailed("invalid_phase", "声明类型不正确")
    _, current = declaration_current(state=state, phase=phase)
    if version != current:
        raise Conflict("declaration_outdated", "声明内容已更新，请刷新页面重新阅读")
    return Declaration.objects.create(
        family=family,
        round=state.round,
        session=session,
        phase=phase,
        text_version=version,
        at=now,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
    )


def _require_declared(state: FamilyState, phase: str, session_id: int | None = None) -> None:
    declared = Declaration.objects.filter(family=state.family, round=state.round, phase=phase)
    if session_id is not None:
        declared = declared.filter(session_id=session_id)
    if not declared.exists():
        raise NotAllowed("declaration_required", "请先阅读并勾选「上述条款，我已阅知」")


def session_open_recheck(*, session_id: int, now: datetime) -> None:
    """Under the family lock, before a write the session's close reads (cart edits, enter,
    give up, confirm): refuse with `window_closed` once the close has committed or the window
    has ended. The close locks every family of the session before it reads their state, so a
    write that passes this check commits before the close reads it, and one that comes after
    the close sees it closed: an answer of 200 is always what the close used."""
    session = Session.objects.filter(pk=session_id).values("status", "ends_at", "kind").first()
    if session is None or session["status"] == Session.Status.CLOSED or now >= session["ends_at"]:
        word = Session.word_of(session["kind"]) if session else "正选"
        raise NotAllowed("window_closed", f"您的{word}时间已结束")


def not_entered(seat: Seat) -> NotAllowed:
    """The family opened its window's page without entering it (the declaration first)."""
    return NotAllowed("not_entered", f"请先勾选声明并进入{seat.session.word}页面")


def formal_enter(*, family: Family, round_id: int, now: datetime) -> Seat:
    """Mark the family as entered into formal selection (it opened the formal page inside its
    window after the formal declaration). Idempotent. From here on the family is covered by
    auto-assign at the window's end. Locks the family row and re-checks the session there."""
    state = family_state(family=family, round_id=round_id, now=now)
    seat = require_formal(state)
    _require_declared(state, Declaration.Phase.FORMAL, seat.session_id)
    if seat.entered_at is None:
        _earlier_sessions_closed(state, CartItem.Kind.FORMAL)
        with transaction.atomic():
            _lock_family(family)
            session_open_recheck(session_id=seat.session_id, now=now)
            Seat.objects.filter(pk=seat.pk, entered_at__isnull=True).update(entered_at=now)
        seat.refresh_from_db(fields=["entered_at"])
    return seat


def _editable(state: FamilyState, kind: str) -> None:
    """The cart of `kind` may change now: pre-selection in its phase after the declaration;
    the formal cart inside the window after entering."""
    if kind == CartItem.Kind.PRE:
        require_preselect(state)
        _require_declared(state, Declaration.Phase.PRE)
    elif kind == CartItem.Kind.FORMAL:
        seat = require_formal(state)
        if seat.entered_at is None:
            raise not_entered(seat)
    else:
        raise ValidationFailed("invalid_cart", "购物车类型不正确")


def _items(family: Family, round_id: int, kind: str) -> list[CartItem]:
    return list(
        CartItem.objects.filter(family=family, round_id=round_id, kind=kind)
        .select_related("unit")
        .order_by("position", "id")
    )


def _renumber(items: list[CartItem]) -> None:
    changed = []
    for position, item in enumerate(items, start=1):
        if item.position != position:
            item.position = position
            changed.append(item)
    if changed:
        CartItem.objects.bulk_update(changed, ["position"])


def _lock_family(family: Family) -> None:
    # Serialises one family's cart edits (two tabs, a double tap) and orders them against the
    # session close, which locks the same rows before it reads the carts.
    lock_first(Family.objects.filter(pk=family.pk))


def _earlier_sessions_closed(state: FamilyState, kind: str) -> None:
    """Before a formal write, every earlier session of the round whose end has passed is
    closed and auto-assigned (see `earlier_sessions_close_due`). Outside the transaction."""
    if kind == CartItem.Kind.FORMAL and state.current is not None:
        from selection.allocation import earlier_sessions_close_due  # allocation imports us

        earlier_sessions_close_due(session=state.current.session, now=state.now)


def _lock_for_edit(state: FamilyState, kind: str) -> None:
    """Lock the family; a formal cart is what the close auto-assigns from, so re-check the
    session under the lock (pre-selection ends when the session starts, long before its
    close)."""
    _lock_family(state.family)
    if kind == CartItem.Kind.FORMAL:
        assert state.current is not None  # _editable allowed a formal edit: a window is open
        session_open_recheck(session_id=state.current.session_id, now=state.now)


def cart_add(
    *, family: Family, round_id: int, kind: str, unit_id: int, now: datetime
) -> list[CartItem]:
    """Add a unit at the end of the cart. Locks the family row. Raises the phase errors,
    `unit_not_found`, `unit_not_eligible` (layout), `unit_taken`, `already_in_cart`,
    `cart_full`."""
    state = family_state(family=family, round_id=round_id, now=now)
    _editable(state, kind)
    unit = Unit.objects.filter(pk=unit_id, round_id=round_id).first()
    if unit is None:
        raise UnitNotFound()
    if not family.may_choose(unit.layout):
        raise NotAllowed("unit_not_eligible", "该房源户型不在您家庭可选户型范围内")
    if unit.status != Unit.Status.AVAILABLE:
        raise Conflict("unit_taken", "该房源已被选定，请选择其他房源")
    _earlier_sessions_closed(state, kind)
    with transaction.atomic():
        _lock_for_edit(state, kind)
        items = _items(family, round_id, kind)
        if any(item.unit_id == unit.pk for item in items):
            raise Conflict("already_in_cart", "该房源已在购物车中")
        if len(items) >= state.round.cart_limit:
            raise Conflict(
                "cart_full", f"购物车最多{state.round.cart_limit}套房源，请先删除后再添加"
            )
        CartItem.objects.create(
            family=family,
            round_id=round_id,
            kind=kind,
            unit=unit,
            position=len(items) + 1,
            added_at=now,
        )
        return _items(family, round_id, kind)


def cart_remove(
    *, family: Family, round_id: int, kind: str, unit_id: int, now: datetime
) -> list[CartItem]:
    """Delete a unit from the cart (also a unit someone else has taken). Raises the phase
    errors and `not_in_cart`."""
    state = family_state(family=family, round_id=round_id, now=now)
    _editable(state, kind)
    _earlier_sessions_closed(state, kind)
    with transaction.atomic():
        _lock_for_edit(state, kind)
        deleted, _ = CartItem.objects.filter(
            family=family, round_id=round_id, kind=kind, unit_id=unit_id
        ).delete()
        if not deleted:
            raise DomainError("not_in_cart", "该房源不在购物车中", kind="not_found")
        items = _items(family, round_id, kind)
        _renumber(items)
        return items


MOVES = ("up", "down", "top")


def cart_move(
    *, family: Family, round_id: int, kind: str, unit_id: int, direction: str, now: datetime
) -> list[CartItem]:
    """上移 / 下移 / 置顶. Raises the phase errors, `not_in_cart`, `cannot_move` (already
    first or last)."""
    if direction not in MOVES:
        raise ValidationFailed("invalid_direction", "移动方向不正确")
    state = family_state(family=family, round_id=round_id, now=now)
    _editable(state, kind)
    _earlier_sessions_closed(state, kind)
    with transaction.atomic():
        _lock_for_edit(state, kind)
        items = _items(family, round_id, kind)
        index = next((i for i, item in enumerate(items) if item.unit_id == unit_id), None)
        if index is None:
            raise DomainError("not_in_cart", "该房源不在购物车中", kind="not_found")
        target = {"up": index - 1, "down": index + 1, "top": 0}[direction]
        if target < 0 or target >= len(items) or target == index:
            raise Conflict("cannot_move", "该房源已在最前或最后")
        items.insert(target, items.pop(index))
        _renumber(items)
        return items


@dataclass(frozen=True)
class SyncDiff:
    pre: list[CartItem]
    formal: list[CartItem]
    removed: list[CartItem]  # formal units the sync would drop (added on the formal page)
    added: list[CartItem]  # pre units not yet in the formal cart


def cart_sync_preview(*, family: Family, round_id: int, now: datetime) -> SyncDiff:
    """What 「同步预选房源」 would do, for the page to show before it overwrites."""
    state = family_state(family=family, round_id=round_id, now=now)
    _editable(state, CartItem.Kind.FORMAL)
    pre = _items(family, round_id, CartItem.Kind.PRE)
    formal = _items(family, round_id, CartItem.Kind.FORMAL)
    pre_units = {item.unit_id for item in pre}
    formal_units = {item.unit_id for item in formal}
    return SyncDiff(
        pre=pre,
        formal=formal,
        removed=[item for item in formal if item.unit_id not in pre_units],
        added=[item for item in pre if item.unit_id not in formal_units],
    )


def cart_sync(*, family: Family, round_id: int, now: datetime) -> list[CartItem]:
    """「确认同步」: the formal cart becomes a copy of the pre-selection cart, in its order,
    overwriting what was added on the formal page (the guide warns of exactly this)."""
    state = family_state(family=family, round_id=round_id, now=now)
    _editable(state, CartItem.Kind.FORMAL)
    _earlier_sessions_closed(state, CartItem.Kind.FORMAL)
    with transaction.atomic():
        _lock_for_edit(state, CartItem.Kind.FORMAL)
        pre = _items(family, round_id, CartItem.Kind.PRE)
        CartItem.objects.filter(
            family=family, round_id=round_id, kind=CartItem.Kind.FORMAL
        ).delete()
        CartItem.objects.bulk_create(
            CartItem(
                family=family,
                round_id=round_id,
                kind=CartItem.Kind.FORMAL,
                unit_id=item.unit_id,
                position=position,
                added_at=now,
            )
            for position, item in enumerate(pre, start=1)
        )
        return _items(family, round_id, CartItem.Kind.FORMAL)
