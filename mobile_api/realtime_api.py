"""HTTP side of the real-time protocol: catch-up after a gap or a reconnect, and the family's
live snapshot. Pages whose socket fails poll these."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError
from events.services import MAX_PAGE, event_json, events_after, stream_heads
from mobile_api.auth import IsApplicant
from mobile_api.schema import ERROR_RESPONSES
from mobile_api.selection_common import (
    AllocationSerializer,
    CartItemSerializer,
    FamilyUnitSerializer,
    ServerTimeSerializer,
    SessionSerializer,
    _family,
    _server_time,
    family_units,
)
from realtime import access
from selection import selectors
from selection.models import CartItem
from selection.phases import family_state


class StreamEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    at = serializers.CharField(help_text="ISO 8601")
    data = serializers.DictField(help_text="the event's payload (docs/REALTIME.md)")


class StreamEventsApi(APIView):
    """Events of a stream after `after` (at most 500; `more` says whether to ask again).
    round.* is public; session.* / family.* need the family's login; qr.* its token."""

    permission_classes = [AllowAny]

    class QuerySerializer(serializers.Serializer):
        after = serializers.IntegerField(min_value=0)
        token = serializers.CharField(required=False, max_length=400, default="")

    class OutputSerializer(ServerTimeSerializer):
        stream = serializers.CharField()
        last_seq = serializers.IntegerField()
        events = StreamEventSerializer(many=True)
        more = serializers.BooleanField(help_text="ask again after the last event's seq")

    @extend_schema(
        parameters=[QuerySerializer], responses={200: OutputSerializer, **ERROR_RESPONSES}
    )
    def get(self, request, stream: str):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if not access.may_read(
            stream=stream,
            user=request.user,
            session_key=request.session.session_key,
            token=query.validated_data["token"],
        ):
            # One answer for "no such stream" and "not yours": nothing to learn by probing.
            raise DomainError("stream_not_found", "没有可读取的事件", kind="not_found")
        head = stream_heads(streams=[stream])[stream]
        events = events_after(stream=stream, after=query.validated_data["after"])
        return Response(
            {
                "stream": stream,
                "last_seq": head,
                "events": [event_json(e) for e in events],
                "more": len(events) == MAX_PAGE,
                **_server_time(timezone.now()),
            }
        )


class LiveCartsSerializer(serializers.Serializer):
    pre = CartItemSerializer(many=True)
    formal = CartItemSerializer(many=True)


class SelectionLiveApi(APIView):
    """The family's live snapshot: stream heads (read first), then phase, carts and result.
    Apply socket events with a seq above these heads. With `units`, the snapshot also
    carries the round's unit list (as GET …/units/ answers it; `available`: the available
    ones only), read after the heads like the rest: a selection page's first snapshot
    brings the list it opens with, one request and one round trip fewer."""

    permission_classes = [IsApplicant]

    class QuerySerializer(serializers.Serializer):
        units = serializers.ChoiceField(choices=["all", "available"], required=False)

    class OutputSerializer(ServerTimeSerializer):
        heads = serializers.DictField(child=serializers.IntegerField())
        phase = serializers.CharField()
        session = SessionSerializer(allow_null=True)
        next_session = SessionSerializer(allow_null=True)
        carts = LiveCartsSerializer()
        allocation = AllocationSerializer(allow_null=True)
        units = FamilyUnitSerializer(many=True, required=False, help_text="with ?units= only")

    @extend_schema(
        parameters=[QuerySerializer], responses={200: OutputSerializer, **ERROR_RESPONSES}
    )
    def get(self, request, round_id: int):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        family = _family(request)
        streams = access.family_streams(family=family, round_id=round_id)
        if streams is None:
            raise DomainError("round_not_found", "未找到该选房批次", kind="not_found")
        heads = stream_heads(streams=streams)
        now = timezone.now()
        state = family_state(family=family, round_id=round_id, now=now)
        carts = {
            kind: CartItemSerializer(
                selectors.cart_list(family=family, round_id=round_id, kind=kind), many=True
            ).data
            for kind in (CartItem.Kind.PRE, CartItem.Kind.FORMAL)
        }
        current = state.current.session if state.current else None
        listed = query.validated_data.get("units")
        units = {}
        if listed:
            units["units"] = family_units(
                family=family, round_id=round_id, available_only=listed == "available"
            )
        return Response(
            {
                "heads": heads,
                "phase": state.phase,
                "session": SessionSerializer(current).data if current else None,
                "next_session": SessionSerializer(state.upcoming.session).data
                if state.upcoming
                else None,
                "carts": carts,
                "allocation": AllocationSerializer(state.allocation).data
                if state.allocation
                else None,
                **units,
                **_server_time(now),
            }
        )
