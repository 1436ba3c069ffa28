"""Serializers and helpers shared by the applicant's selection API modules
(`selection_api`, `selection_result_api`)."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from core.errors import DomainError
from selection import selectors
from selection.models import CartItem
from selection.phases import family_state


def _family(request):
    return request.user.applicant.family


def _server_time(now) -> dict:
    return {"server_time": now.isoformat(), "server_time_ms": int(now.timestamp() * 1000)}


class UnitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    building = serializers.CharField()
    number = serializers.CharField()
    label = serializers.CharField()
    floor = serializers.IntegerField()
    layout = serializers.CharField()
    layout_label = serializers.CharField(source="get_layout_display")
    orientation = serializers.CharField()
    orientation_label = serializers.CharField(source="get_orientation_display")
    area = serializers.DecimalField(max_digits=7, decimal_places=2)
    monthly_rent = serializers.DecimalField(max_digits=9, decimal_places=2)
    status = serializers.CharField()
    status_label = serializers.CharField(source="get_status_display")


class FamilyUnitSerializer(UnitSerializer):
    eligible = serializers.BooleanField()


def family_units(*, family, round_id: int, available_only: bool, **filters) -> list:
    """selectors.family_unit_list (building, layout, orientation filters) as
    FamilyUnitSerializer gives it: what GET …/units/ and the live snapshot answer."""
    units = selectors.family_unit_list(
        family=family, round_id=round_id, available_only=available_only, **filters
    )
    return FamilyUnitSerializer(units, many=True).data


class CartItemSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    unit = UnitSerializer()


class CartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CartItem.Kind.choices)
    limit = serializers.IntegerField()
    items = CartItemSerializer(many=True)
    server_time = serializers.CharField(read_only=True, help_text="ISO 8601")
    server_time_ms = serializers.IntegerField(read_only=True)


def cart_of(*, family, round_id: int, kind: str, limit: int, items=None) -> dict:
    """A cart as CartSerializer takes it: the kind, the round's limit and its items (read
    here unless the caller has them)."""
    if items is None:
        items = selectors.cart_list(family=family, round_id=round_id, kind=kind)
    return {"kind": kind, "limit": limit, "items": items}


def _cart_response(request, round_id: int, kind: str, items=None) -> Response:
    family = _family(request)
    now = timezone.now()
    state = family_state(family=family, round_id=round_id, now=now)
    cart = cart_of(
        family=family, round_id=round_id, kind=kind, limit=state.round.cart_limit, items=items
    )
    return Response({**CartSerializer(cart).data, **_server_time(now)})


KIND_CHOICES = [CartItem.Kind.PRE, CartItem.Kind.FORMAL]


def _kind(kind: str) -> str:
    if kind not in KIND_CHOICES:
        raise DomainError("not_found", "请求的内容不存在", kind="not_found")
    return kind


class ServerTimeSerializer(serializers.Serializer):
    """The server's clock when the answer was made (`_server_time`): pages sync on it."""

    server_time = serializers.CharField(read_only=True, help_text="ISO 8601")
    server_time_ms = serializers.IntegerField(read_only=True)


class OptionSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()


class SessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField()
    kind = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    status = serializers.CharField()


class AllocationSerializer(serializers.Serializer):
    unit = UnitSerializer()
    how = serializers.CharField()
    how_label = serializers.CharField()
    at = serializers.DateTimeField()
    # 核验码: the first 8 hex digits of its log entry's leaf hash (the result SMS prints it).
    code = serializers.CharField(source="ledger_entry.code")
