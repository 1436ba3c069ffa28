"""The applicant's selection API: one view class per operation. Views parse, call one
domain service, serialize; the rules live in selection/. Confirm, give up, supplementary,
the result and the broadcast are in `selection_result_api`."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Layout
from core.context import RequestContext
from core.errors import DomainError
from mobile_api.auth import IsApplicant
from mobile_api.schema import ERROR_RESPONSES, IsoDateTimeField, link, path_enum
from mobile_api.selection_common import (
    KIND_CHOICES,
    CartItemSerializer,
    CartSerializer,
    FamilyUnitSerializer,
    OptionSerializer,
    ServerTimeSerializer,
    SessionSerializer,
    UnitSerializer,
    _cart_response,
    _family,
    _kind,
    _server_time,
    cart_of,
    family_units,
)
from selection import carts, selectors
from selection.models import CartItem, Declaration, Orientation
from selection.phases import family_state

PHASE = path_enum("phase", Declaration.Phase.values, "预选 (pre) or 正式 (formal) selection")
KIND = path_enum("kind", KIND_CHOICES, "the pre-selection or the formal cart")


class StateRoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    preselect_starts_at = IsoDateTimeField()
    cart_limit = serializers.IntegerField()
    window_seconds = serializers.IntegerField()


class StateApi(APIView):
    """Where the family stands: phase, its session window, what it has done, server time."""

    permission_classes = [IsApplicant]

    class OutputSerializer(serializers.Serializer):
        round = StateRoundSerializer()
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
            self.OutputSerializer(
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
                    and declarations.filter(
                        phase=Declaration.Phase.FORMAL, session=current
                    ).exists(),
                    **_server_time(now),
                }
            ).data
        )


class RoundListApi(APIView):
    openapi_links = {
        "get": {
            200: {
                name: link(operation, round_id="$response.body#/0/id")
                for name, operation in {
                    "State": "v1_selection_state_retrieve",
                    "Units": "v1_selection_units_list",
                    "UnitFilters": "v1_selection_unit_filters_retrieve",
                    "Cart": "v1_selection_cart_retrieve",
                    "Declaration": "v1_selection_declaration_retrieve",
                    "Live": "v1_selection_live_retrieve",
                    "Result": "v1_selection_result_retrieve",
                    "Broadcast": "v1_broadcast_retrieve",
                }.items()
            }
        }
    }

    permission_classes = [IsApplicant]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        preselect_starts_at = serializers.DateTimeField()
        allocated_unit = UnitSerializer(
            allow_null=True, help_text="the unit allocated to the family in this round"
        )

    @extend_schema(
        operation_id="v1_selection_rounds_list",
        responses={200: OutputSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request):
        family = _family(request)
        rounds = list(selectors.family_rounds(family=family))
        allocated = selectors.family_allocated_units(family=family)
        for rnd in rounds:
            rnd.allocated_unit = allocated.get(rnd.pk)
        return Response(self.OutputSerializer(rounds, many=True).data)


class DeclarationApi(APIView):
    """GET the declaration text and its version; POST to acknowledge 「上述条款，我已阅知」."""

    openapi_links = {
        "get": {
            200: {
                "Acknowledge": link(
                    "v1_selection_declaration_create",
                    request_body={
                        "text_version": "$response.body#/text_version",
                        "acknowledged": True,
                    },
                    round_id="$request.path.round_id",
                    phase="$request.path.phase",
                )
            }
        }
    }

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

    @extend_schema(parameters=[PHASE], responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int, phase: str):
        state = family_state(family=_family(request), round_id=round_id, now=timezone.now())
        text, version = carts.declaration_current(state=state, phase=self._phase(phase))
        return Response({"phase": phase, "text": text, "text_version": version})

    @extend_schema(
        parameters=[PHASE],
        request=InputSerializer,
        responses={201: None, **ERROR_RESPONSES},
    )
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

    openapi_links = {
        "get": {
            200: {
                "AddToCart": link(
                    "v1_selection_cart_items_create",
                    request_body={"unit_id": "$response.body#/0/id"},
                    round_id="$request.path.round_id",
                )
            }
        }
    }

    permission_classes = [IsApplicant]

    class FilterSerializer(serializers.Serializer):
        building = serializers.CharField(required=False, max_length=20, allow_blank=True)
        layout = serializers.ChoiceField(choices=Layout.choices, required=False, allow_blank=True)
        orientation = serializers.ChoiceField(
            choices=Orientation.choices, required=False, allow_blank=True
        )
        available = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="v1_selection_units_list",
        parameters=[FilterSerializer],
        responses={200: FamilyUnitSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request, round_id: int):
        family = _family(request)
        family_state(family=family, round_id=round_id, now=timezone.now())  # membership
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        return Response(
            family_units(
                family=family,
                round_id=round_id,
                available_only=f["available"],
                building=f.get("building", ""),
                layout=f.get("layout", ""),
                orientation=f.get("orientation", ""),
            )
        )


class UnitFiltersApi(APIView):
    permission_classes = [IsApplicant]

    class OutputSerializer(serializers.Serializer):
        buildings = serializers.ListField(child=serializers.CharField())
        layouts = OptionSerializer(many=True)
        orientations = OptionSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        family_state(family=_family(request), round_id=round_id, now=timezone.now())
        values = selectors.unit_filters(round_id=round_id)
        return Response(
            self.OutputSerializer(
                {
                    "buildings": values["buildings"],
                    "layouts": [{"value": v, "label": Layout(v).label} for v in values["layouts"]],
                    "orientations": [
                        {"value": v, "label": Orientation(v).label} for v in values["orientations"]
                    ],
                }
            ).data
        )


class CartApi(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(parameters=[KIND], responses={200: CartSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int, kind: str):
        return _cart_response(request, round_id, _kind(kind))


class CartItemAddApi(APIView):
    """选择: add a unit to the end of the cart."""

    openapi_links = {
        "post": {
            201: {
                name: link(
                    operation,
                    round_id="$request.path.round_id",
                    kind="$request.path.kind",
                    unit_id="$request.body#/unit_id",
                )
                for name, operation in {
                    "Remove": "v1_selection_cart_items_destroy",
                    "Move": "v1_selection_cart_items_move_create",
                }.items()
            }
        }
    }

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        unit_id = serializers.IntegerField(min_value=1)

    @extend_schema(
        parameters=[KIND],
        request=InputSerializer,
        responses={201: CartSerializer, **ERROR_RESPONSES},
    )
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

    @extend_schema(parameters=[KIND], responses={200: CartSerializer, **ERROR_RESPONSES})
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

    @extend_schema(
        parameters=[KIND],
        request=InputSerializer,
        responses={200: CartSerializer, **ERROR_RESPONSES},
    )
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
    entered formal selection (and is covered by auto-assign). The answer carries the formal
    cart (its limit and items, as GET cart/formal/ gives them), so the page opens with one
    round trip fewer; the live snapshot keeps the items current from there."""

    permission_classes = [IsApplicant]

    class OutputSerializer(ServerTimeSerializer):
        entered_at = IsoDateTimeField()
        session = SessionSerializer()
        cart = CartSerializer()

    @extend_schema(request=None, responses={200: OutputSerializer, **ERROR_RESPONSES})
    def post(self, request, round_id: int):
        now = timezone.now()
        family = _family(request)
        seat = carts.formal_enter(family=family, round_id=round_id, now=now)
        cart = cart_of(
            family=family,
            round_id=round_id,
            kind=CartItem.Kind.FORMAL,
            limit=seat.session.round.cart_limit,
        )
        return Response(
            self.OutputSerializer(
                {
                    "entered_at": seat.entered_at,
                    "session": seat.session,
                    "cart": cart,
                    **_server_time(now),
                }
            ).data
        )


class CartSyncApi(APIView):
    """GET: what 「同步预选房源」 would change. POST: overwrite the formal cart with the
    pre-selection cart."""

    permission_classes = [IsApplicant]

    class DiffSerializer(ServerTimeSerializer):
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
