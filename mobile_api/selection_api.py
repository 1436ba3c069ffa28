"""The applicant's selection API: one view class per operation. Views parse, call one
domain service, serialize; the rules live in selection/."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Layout
from core.context import RequestContext
from core.errors import DomainError
from mobile_api.auth import IsApplicant
from mobile_api.schema import ERROR_RESPONSES
from selection import allocation, carts, selectors, supplementary
from selection.models import Allocation, CartItem, Declaration, Orientation, Unit
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


class CartItemSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    unit = UnitSerializer()


class CartSerializer(serializers.Serializer):
    kind = serializers.CharField()
    limit = serializers.IntegerField()
    items = CartItemSerializer(many=True)
    server_time_ms = serializers.IntegerField(read_only=True, required=False)


def _cart_response(request, round_id: int, kind: str, items=None) -> Response:
    family = _family(request)
    items = (
        items
        if items is not None
        else selectors.cart_list(family=family, round_id=round_id, kind=kind)
    )
    now = timezone.now()
    state = family_state(family=family, round_id=round_id, now=now)
    return Response(
        {
            **CartSerializer({"kind": kind, "limit": state.round.cart_limit, "items": items}).data,
            **_server_time(now),
        }
    )


KIND_CHOICES = [CartItem.Kind.PRE, CartItem.Kind.FORMAL]


def _kind(kind: str) -> str:
    if kind not in KIND_CHOICES:
        raise DomainError("not_found", "请求的内容不存在", kind="not_found")
    return kind


class SessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField()
    kind = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    status = serializers.CharField()


class StateApi(APIView):
    """Where the family stands: phase, its session window, what it has done, server time."""

    permission_classes = [IsApplicant]

    class OutputSerializer(serializers.Serializer):
        round = serializers.DictField()
        phase = serializers.CharField()
        session = SessionSerializer(allow_null=True)
        next_session = SessionSerializer(allow_null=True)
        entered = serializers.BooleanField()
        declared_pre = serializers.BooleanField()
        declared_formal = serializers.BooleanField()
        server_time = serializers.DateTimeField()
        server_time_ms = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        now = timezone.now()
        family = _family(request)
        state = family_state(family=family, round_id=round_id, now=now)
        current = state.current.session if state.current else None
        declarations = Declaration.objects.filter(family=family, round=state.round)
        return Response(
            {
                "round": {
                    "id": state.round.pk,
                    "name": state.round.name,
                    "preselect_starts_at": state.round.preselect_starts_at.isoformat(),
                    "cart_limit": state.round.cart_limit,
                    "window_seconds": state.round.window_seconds,
                },
                "phase": state.phase,
                "session": SessionSerializer(current).data if current else None,
                "next_session": SessionSerializer(state.upcoming.session).data
                if state.upcoming
                else None,
                "entered": bool(state.current and state.current.entered_at),
                "declared_pre": declarations.filter(phase=Declaration.Phase.PRE).exists(),
                "declared_formal": bool(current)
                and declarations.filter(phase=Declaration.Phase.FORMAL, session=current).exists(),
                **_server_time(now),
            }
        )


class RoundListApi(APIView):
    permission_classes = [IsApplicant]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        preselect_starts_at = serializers.DateTimeField()

    @extend_schema(responses={200: OutputSerializer(many=True), **ERROR_RESPONSES})
    def get(self, request):
        rounds = selectors.family_rounds(family=_family(request))
        return Response(self.OutputSerializer(rounds, many=True).data)


class DeclarationApi(APIView):
    """GET the declaration text and its version; POST to acknowledge 「上述条款，我已阅知」."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        text_version = serializers.RegexField(r"^[0-9a-f]{64}$")
        acknowledged = serializers.BooleanField()

    class OutputSerializer(serializers.Serializer):
        phase = serializers.CharField()
        text = serializers.CharField()
        text_version = serializers.CharField()

    def _phase(self, phase: str) -> str:
        if phase not in Declaration.Phase.values:
            raise DomainError("not_found", "请求的内容不存在", kind="not_found")
        return phase

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int, phase: str):
        state = family_state(family=_family(request), round_id=round_id, now=timezone.now())
        text, version = carts.declaration_current(state=state, phase=self._phase(phase))
        return Response({"phase": phase, "text": text, "text_version": version})

    @extend_schema(request=InputSerializer, responses={201: None, **ERROR_RESPONSES})
    def post(self, request, round_id: int, phase: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data["acknowledged"]:
            raise DomainError("not_acknowledged", "请勾选「上述条款，我已阅知」", kind="invalid")
        carts.declaration_acknowledge(
            family=_family(request),
            round_id=round_id,
            phase=self._phase(phase),
            version=data.validated_data["text_version"],
            ctx=RequestContext.from_request(request),
            now=timezone.now(),
        )
        return Response(status=status.HTTP_201_CREATED)


class UnitListApi(APIView):
    """Units of the round, filtered by building, layout and orientation; each marked whether
    the family's household may choose it."""

    permission_classes = [IsApplicant]

    class FilterSerializer(serializers.Serializer):
        building = serializers.CharField(required=False, max_length=20, allow_blank=True)
        layout = serializers.ChoiceField(choices=Layout.choices, required=False, allow_blank=True)
        orientation = serializers.ChoiceField(
            choices=Orientation.choices, required=False, allow_blank=True
        )
        available = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(UnitSerializer):
        eligible = serializers.BooleanField()

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: OutputSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request, round_id: int):
        family = _family(request)
        family_state(family=family, round_id=round_id, now=timezone.now())  # membership
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        units = selectors.unit_list(
            round_id=round_id,
            building=f.get("building", ""),
            layout=f.get("layout", ""),
            orientation=f.get("orientation", ""),
            available_only=f["available"],
        )
        eligible = set(family.eligible_layouts)
        for unit in units:
            unit.eligible = unit.layout in eligible
        return Response(self.OutputSerializer(units, many=True).data)


class UnitFiltersApi(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        family_state(family=_family(request), round_id=round_id, now=timezone.now())
        values = selectors.unit_filters(round_id=round_id)
        return Response(
            {
                "buildings": values["buildings"],
                "layouts": [{"value": v, "label": Layout(v).label} for v in values["layouts"]],
                "orientations": [
                    {"value": v, "label": Orientation(v).label} for v in values["orientations"]
                ],
            }
        )


class CartApi(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(responses={200: CartSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int, kind: str):
        return _cart_response(request, round_id, _kind(kind))


class CartItemAddApi(APIView):
    """选择: add a unit to the end of the cart."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        unit_id = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses={201: CartSerializer, **ERROR_RESPONSES})
    def post(self, request, round_id: int, kind: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = carts.cart_add(
            family=_family(request),
            round_id=round_id,
            kind=_kind(kind),
            unit_id=data.validated_data["unit_id"],
            now=timezone.now(),
        )
        response = _cart_response(request, round_id, kind, items)
        response.status_code = status.HTTP_201_CREATED
        return response


class CartItemRemoveApi(APIView):
    """删除."""

    permission_classes = [IsApplicant]

    @extend_schema(responses={200: CartSerializer, **ERROR_RESPONSES})
    def delete(self, request, round_id: int, kind: str, unit_id: int):
        items = carts.cart_remove(
            family=_family(request),
            round_id=round_id,
            kind=_kind(kind),
            unit_id=unit_id,
            now=timezone.now(),
        )
        return _cart_response(request, round_id, kind, items)


class CartItemMoveApi(APIView):
    """上移 / 下移 / 置顶."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        direction = serializers.ChoiceField(choices=carts.MOVES)

    @extend_schema(request=InputSerializer, responses={200: CartSerializer, **ERROR_RESPONSES})
    def post(self, request, round_id: int, kind: str, unit_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = carts.cart_move(
            family=_family(request),
            round_id=round_id,
            kind=_kind(kind),
            unit_id=unit_id,
            direction=data.validated_data["direction"],
            now=timezone.now(),
        )
        return _cart_response(request, round_id, kind, items)


class FormalEnterApi(APIView):
    """The formal page was opened inside the window after the declaration: the family has
    entered formal selection (and is covered by auto-assign)."""

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        now = timezone.now()
        seat = carts.formal_enter(family=_family(request), round_id=round_id, now=now)
        return Response(
            {
                "entered_at": seat.entered_at.isoformat(),
                "session": SessionSerializer(seat.session).data,
                **_server_time(now),
            }
        )


class CartSyncApi(APIView):
    """GET: what 「同步预选房源」 would change. POST: overwrite the formal cart with the
    pre-selection cart."""

    permission_classes = [IsApplicant]

    class DiffSerializer(serializers.Serializer):
        pre = CartItemSerializer(many=True)
        formal = CartItemSerializer(many=True)
        removed = CartItemSerializer(many=True)
        added = CartItemSerializer(many=True)

    @extend_schema(responses={200: DiffSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        diff = carts.cart_sync_preview(
            family=_family(request), round_id=round_id, now=timezone.now()
        )
        return Response({**self.DiffSerializer(diff).data, **_server_time(timezone.now())})

    @extend_schema(request=None, responses={200: CartSerializer, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        items = carts.cart_sync(family=_family(request), round_id=round_id, now=timezone.now())
        return _cart_response(request, round_id, CartItem.Kind.FORMAL, items)


class AllocationSerializer(serializers.Serializer):
    unit = UnitSerializer()
    how = serializers.CharField()
    how_label = serializers.CharField(source="get_how_display")
    at = serializers.DateTimeField()
    ledger_seq = serializers.IntegerField()


class ConfirmApi(APIView):
    """确认正选: irreversible. 201 the first time, 200 for a repeat; 409 `unit_taken` when
    another family was first, `already_allocated` after a different confirm."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        unit_id = serializers.IntegerField(min_value=1)
        idempotency_key = serializers.RegexField(r"^[A-Za-z0-9_-]{8,64}$")

    @extend_schema(
        request=InputSerializer,
        responses={201: AllocationSerializer, 200: AllocationSerializer, **ERROR_RESPONSES},
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

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        token = allocation.give_up_intent(
            family=_family(request), round_id=round_id, now=timezone.now()
        )
        return Response({"token": token, "expires_in": allocation.GIVE_UP_TOKEN_SECONDS})


class GiveUpApi(APIView):
    """The second asking: irreversible; no supplementary selection afterwards."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=400)

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
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
        return Response({"gave_up_at": give_up.at.isoformat()}, status=status.HTTP_201_CREATED)


class SupplementaryApplyApi(APIView):
    """补选申请."""

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses={201: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        application = supplementary.supplementary_apply(
            family=_family(request),
            round_id=round_id,
            ctx=RequestContext.from_request(request),
            now=timezone.now(),
        )
        return Response(
            {"applied_at": application.applied_at.isoformat()}, status=status.HTTP_201_CREATED
        )


class ResultApi(APIView):
    """我的选房结果: the allocation, each session's outcome, supplementary status."""

    permission_classes = [IsApplicant]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        now = timezone.now()
        result = selectors.my_result(family=_family(request), round_id=round_id, now=now)
        return Response(
            {
                "phase": result.state.phase,
                "allocation": AllocationSerializer(result.allocation).data
                if result.allocation
                else None,
                "sessions": [
                    {
                        **SessionSerializer(seat.session).data,
                        "entered": seat.entered_at is not None,
                        "outcome": seat.outcome,
                        "outcome_label": seat.get_outcome_display(),
                    }
                    for seat in result.seats
                    if seat.session.kind == "formal" or result.supplementary_session
                ],
                "gave_up": result.state.gave_up,
                "supplementary": {
                    "can_apply": result.can_apply_supplementary,
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
                **_server_time(now),
            }
        )


class BroadcastApi(APIView):
    """房源信息播报 (public): every unit's status, counts, the latest takes. No family data."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        now = timezone.now()
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
                "total": snapshot["total"],
                "taken": snapshot["taken"],
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
                        "unit": f"{f['unit__building']}-{f['unit__number']}",
                        "layout_label": labels["layout"][f["unit__layout"]],
                        "how": f["how"],
                        "how_label": Allocation.How(f["how"]).label,
                        "at": f["at"].isoformat(),
                        "seq": f["ledger_seq"],
                    }
                    for f in snapshot["feed"]
                ],
                **_server_time(now),
            }
        )
