"""The applicant's selection API, the irreversible part and what follows it: confirm, give
up, supplementary application, the result; and the public broadcast. One view class per
operation; views parse, call one domain service, serialize; the rules live in selection/."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Layout
from core.context import RequestContext
from core.errors import DomainError
from events.services import stream_heads
from events.streams import round_stream
from mobile_api.auth import IsApplicant
from mobile_api.ledger_api import ReceiptSerializer
from mobile_api.schema import ERROR_RESPONSES, IsoDateTimeField, link
from mobile_api.selection_common import (
    AllocationSerializer,
    ServerTimeSerializer,
    SessionSerializer,
    _family,
    _server_time,
)
from selection import allocation, selectors, supplementary, translog
from selection.models import Allocation, Orientation, Unit, unit_name
from signing.selectors import SIGNING_STATUSES, allocation_signing


class ConfirmApi(APIView):
    """确认正选: irreversible. 201 the first time, 200 for a repeat; 409 `unit_taken` when
    another family was first, `already_allocated` after a different confirm."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        unit_id = serializers.IntegerField(min_value=1)
        idempotency_key = serializers.RegexField(r"^[A-Za-z0-9_-]{8,64}$")

    class OutputSerializer(AllocationSerializer, ServerTimeSerializer):
        pass

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 200: OutputSerializer, **ERROR_RESPONSES},
    )
    def post(self, request, round_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = allocation.selection_confirm(
            family=_family(request),
            round_id=round_id,
            unit_id=data.validated_data["unit_id"],
            idempotency_key=data.validated_data["idempotency_key"],
            now=timezone.now(),
        )
        return Response(
            {**AllocationSerializer(result.allocation).data, **_server_time(timezone.now())},
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class GiveUpIntentApi(APIView):
    """The first asking of 主动放弃: returns a token the second asking must send back."""

    openapi_links = {
        "post": {
            200: {
                "GiveUp": link(
                    "v1_selection_give_up_create",
                    request_body={"token": "$response.body#/token"},
                    round_id="$request.path.round_id",
                )
            }
        }
    }

    permission_classes = [IsApplicant]

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="send it back to give-up/")
        expires_in = serializers.IntegerField(help_text="seconds")

    @extend_schema(request=None, responses={200: OutputSerializer, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        token = allocation.give_up_intent(
            family=_family(request), round_id=round_id, now=timezone.now()
        )
        return Response(
            self.OutputSerializer(
                {"token": token, "expires_in": allocation.GIVE_UP_TOKEN_SECONDS}
            ).data
        )


class GiveUpApi(APIView):
    """The second asking: irreversible; no supplementary selection afterwards."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=400)

    class OutputSerializer(serializers.Serializer):
        gave_up_at = IsoDateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        give_up = allocation.selection_give_up(
            family=_family(request),
            round_id=round_id,
            token=data.validated_data["token"],
            ctx=RequestContext.from_request(request),
            now=timezone.now(),
        )
        return Response(
            self.OutputSerializer({"gave_up_at": give_up.at}).data, status=status.HTTP_201_CREATED
        )


class SupplementaryApplyApi(APIView):
    """补选申请."""

    permission_classes = [IsApplicant]

    class OutputSerializer(serializers.Serializer):
        applied_at = IsoDateTimeField()

    @extend_schema(request=None, responses={201: OutputSerializer, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        application = supplementary.supplementary_apply(
            family=_family(request),
            round_id=round_id,
            ctx=RequestContext.from_request(request),
            now=timezone.now(),
        )
        return Response(
            self.OutputSerializer({"applied_at": application.applied_at}).data,
            status=status.HTTP_201_CREATED,
        )


class ResultSeatSerializer(SessionSerializer):
    entered = serializers.BooleanField()
    outcome = serializers.CharField(allow_blank=True)
    outcome_label = serializers.CharField(allow_blank=True)
    explanation = serializers.CharField(allow_blank=True)


class ResultAllocationSerializer(AllocationSerializer):
    # The session (an id among `sessions`) the unit was allocated in: the page explains that
    # session's outcome next to the unit, never an earlier session's miss.
    session = serializers.IntegerField(source="session_id")


class ResultSupplementarySerializer(serializers.Serializer):
    can_apply = serializers.BooleanField()
    closed = serializers.BooleanField(help_text="the application window closed unused")
    deadline = IsoDateTimeField(allow_null=True)
    applied_at = IsoDateTimeField(allow_null=True)
    session = SessionSerializer(allow_null=True)


class ResultSigningSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=SIGNING_STATUSES,
        help_text="todo: to be signed by `deadline`; submitted: under review; approved; "
        "closed: void or abandoned",
    )
    deadline = IsoDateTimeField(allow_null=True)


class ResultApi(APIView):
    """我的选房结果: the allocation, each session's outcome, supplementary status, and where
    the signing of the allocated unit's lease stands."""

    permission_classes = [IsApplicant]

    class OutputSerializer(ServerTimeSerializer):
        phase = serializers.CharField()
        allocation = ResultAllocationSerializer(allow_null=True)
        sessions = ResultSeatSerializer(many=True)
        gave_up = serializers.BooleanField()
        supplementary = ResultSupplementarySerializer()
        signing = ResultSigningSerializer(allow_null=True, help_text="null without a unit")

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        now = timezone.now()
        result = selectors.my_result(family=_family(request), round_id=round_id, now=now)
        signing = allocation_signing(allocation=result.allocation) if result.allocation else None
        # Built from serializers' output already: OutputSerializer documents the shape.
        return Response(
            {
                "phase": result.state.phase,
                "allocation": ResultAllocationSerializer(result.allocation).data
                if result.allocation
                else None,
                "sessions": [
                    {
                        **SessionSerializer(seat.session).data,
                        "entered": seat.entered_at is not None,
                        "outcome": seat.outcome,
                        "outcome_label": seat.outcome_label,
                        "explanation": result.explanations.get(seat.session_id, ""),
                    }
                    for seat in result.seats
                ],
                "gave_up": result.state.gave_up,
                "supplementary": {
                    "can_apply": result.can_apply_supplementary,
                    "closed": result.supplementary_closed,
                    "deadline": result.supplementary_deadline.isoformat()
                    if result.supplementary_deadline
                    else None,
                    "applied_at": result.application.applied_at.isoformat()
                    if result.application
                    else None,
                    "session": SessionSerializer(result.supplementary_session).data
                    if result.supplementary_session
                    else None,
                },
                "signing": {
                    "status": signing.status,
                    "deadline": signing.deadline.isoformat() if signing.deadline else None,
                }
                if signing
                else None,
                **_server_time(now),
            }
        )


class ReceiptApi(APIView):
    """The family's receipt from the allocation log: its result's entry (allocation, give-up,
    or its last session's no-unit / absent), the latest signed head and the inclusion proof.
    `head` is null for the moment the entry waits for the sequencer (under a second)."""

    permission_classes = [IsApplicant]

    class OutputSerializer(ReceiptSerializer):
        pass

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        receipt = translog.family_receipt(family=_family(request), round_id=round_id)
        return Response(receipt.as_json())


class BroadcastCountSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    taken = serializers.IntegerField()
    withdrawn = serializers.IntegerField(help_text="撤回: neither taken nor available")
    available = serializers.IntegerField()


class BroadcastBuildingSerializer(BroadcastCountSerializer):
    building = serializers.CharField()


class BroadcastLayoutSerializer(BroadcastCountSerializer):
    layout = serializers.CharField()
    label = serializers.CharField()


class BroadcastUnitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    building = serializers.CharField()
    number = serializers.CharField()
    floor = serializers.IntegerField()
    layout = serializers.CharField()
    orientation = serializers.CharField()
    status = serializers.CharField()
    area = serializers.CharField(help_text="square metres, decimal")
    layout_label = serializers.CharField()
    orientation_label = serializers.CharField()
    status_label = serializers.CharField()


class BroadcastFeedSerializer(serializers.Serializer):
    unit = serializers.CharField()
    layout_label = serializers.CharField()
    how = serializers.CharField()
    how_label = serializers.CharField()
    at = serializers.CharField(help_text="ISO 8601")
    seq = serializers.IntegerField()


class BroadcastRoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class BroadcastApi(APIView):
    """房源信息播报 (public): every unit's status, counts, the latest takes. No family data."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(ServerTimeSerializer, BroadcastCountSerializer):
        round = BroadcastRoundSerializer()
        by_building = BroadcastBuildingSerializer(many=True)
        by_layout = BroadcastLayoutSerializer(many=True)
        units = BroadcastUnitSerializer(many=True)
        feed = BroadcastFeedSerializer(many=True)
        heads = serializers.DictField(
            child=serializers.IntegerField(), help_text="last seq of each stream, by name"
        )

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        now = timezone.now()
        stream = round_stream(round_id)
        heads = stream_heads(streams=[stream])  # read before the snapshot: events above apply
        snapshot = selectors.broadcast_snapshot(round_id=round_id)
        if not snapshot:
            raise DomainError("round_not_found", "未找到该选房批次", kind="not_found")
        labels = {
            "layout": dict(Layout.choices),
            "orientation": dict(Orientation.choices),
            "status": dict(Unit.Status.choices),
        }
        return Response(
            {
                "round": {"id": snapshot["round"].pk, "name": snapshot["round"].name},
                **{k: snapshot[k] for k in ("total", "taken", "withdrawn", "available")},
                "by_building": snapshot["by_building"],
                "by_layout": snapshot["by_layout"],
                "units": [
                    {
                        **{
                            k: u[k]
                            for k in (
                                "id",
                                "building",
                                "number",
                                "floor",
                                "layout",
                                "orientation",
                                "status",
                            )
                        },
                        "area": str(u["area"]),
                        "layout_label": labels["layout"][u["layout"]],
                        "orientation_label": labels["orientation"][u["orientation"]],
                        "status_label": labels["status"][u["status"]],
                    }
                    for u in snapshot["units"]
                ],
                "feed": [
                    {
                        "unit": unit_name(f["unit__building"], f["unit__number"]),
                        "layout_label": labels["layout"][f["unit__layout"]],
                        "how": f["how"],
                        "how_label": Allocation.How(f["how"]).label,
                        "at": f["at"].isoformat(),
                        "seq": f["ledger_entry_id"],
                    }
                    for f in snapshot["feed"]
                ],
                "heads": heads,
                **_server_time(now),
            }
        )
