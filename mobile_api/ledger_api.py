"""The allocation log's public, read-only API (docs/TRANSPARENCY.md): the log key, the latest
signed head, a leaf, inclusion and consistency proofs, and a receipt by 核验码. No login: the
log is public by design, and its entries carry family ids and ranks, never names."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import logkey
from core.errors import DomainError
from mobile_api.schema import ERROR_RESPONSES
from selection import translog
from selection.ledger import log_name, stored_entry
from selection.models import Round

MAX_INDEX = 2**62


def _round(round_id: int) -> None:
    if not Round.objects.filter(pk=round_id).exists():
        raise DomainError("round_not_found", "未找到该选房批次", kind="not_found")


class HeadSerializer(serializers.Serializer):
    log = serializers.CharField()
    size = serializers.IntegerField()
    root = serializers.CharField(help_text="hex SHA-256")
    time = serializers.CharField(help_text="UTC, ISO 8601 with microseconds")
    key_id = serializers.CharField()
    signature = serializers.CharField(help_text="base64 Ed25519 over the head's text form")


class EntrySerializer(serializers.Serializer):
    round = serializers.IntegerField()
    session = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    at = serializers.CharField()
    payload = serializers.JSONField()


class ReceiptSerializer(serializers.Serializer):
    log = serializers.CharField()
    index = serializers.IntegerField(allow_null=True)
    leaf_hash = serializers.CharField()
    code = serializers.CharField(help_text="核验码: the leaf hash's first 10 hex digits")
    entry = EntrySerializer()
    head = HeadSerializer(allow_null=True, help_text="null while the entry awaits sequencing")
    inclusion = serializers.ListField(child=serializers.CharField())


class _PublicApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []


class PublicKeyApi(_PublicApi):
    """The log key's public half (PEM) and its id: what tools/verify.py checks heads with."""

    class OutputSerializer(serializers.Serializer):
        key_id = serializers.CharField()
        public_key_pem = serializers.CharField()

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request):
        return Response({"key_id": logkey.key_id(), "public_key_pem": logkey.public_key_pem()})


class HeadApi(_PublicApi):
    """The round's latest signed tree head (404 `head_not_found` before the first entry)."""

    class OutputSerializer(HeadSerializer):
        pass

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int):
        _round(round_id)
        head = translog.latest_head(round_id=round_id)
        if head is None:
            raise DomainError("head_not_found", "该批次尚无选房日志", kind="not_found")
        return Response(translog.head_json(head))


class LeafApi(_PublicApi):
    """One entry by its index, with its leaf hash."""

    class OutputSerializer(serializers.Serializer):
        log = serializers.CharField()
        index = serializers.IntegerField()
        leaf_hash = serializers.CharField()
        entry = EntrySerializer()

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int, index: int):
        _round(round_id)
        entry = translog.leaf_get(round_id=round_id, index=index)
        return Response(
            {
                "log": log_name(round_id),
                "index": entry.index,
                "leaf_hash": entry.leaf_hash,
                "entry": stored_entry(entry),
            }
        )


class ProofSerializer(serializers.Serializer):
    proof = serializers.ListField(child=serializers.CharField(), help_text="hex hashes")


class InclusionProofApi(_PublicApi):
    """RFC 9162 inclusion proof of leaf `index` in the tree of `size` (a signed head's size)."""

    class InputSerializer(serializers.Serializer):
        index = serializers.IntegerField(min_value=0, max_value=MAX_INDEX)
        size = serializers.IntegerField(min_value=1, max_value=MAX_INDEX)

    class OutputSerializer(ProofSerializer):
        log = serializers.CharField()
        index = serializers.IntegerField()
        size = serializers.IntegerField()
        leaf_hash = serializers.CharField()

    @extend_schema(
        parameters=[InputSerializer], responses={200: OutputSerializer, **ERROR_RESPONSES}
    )
    def get(self, request, round_id: int):
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        index, size = data.validated_data["index"], data.validated_data["size"]
        _round(round_id)
        proof = translog.inclusion_proof(round_id=round_id, index=index, size=size)
        leaf = translog.leaf_get(round_id=round_id, index=index)
        return Response(
            {
                "log": log_name(round_id),
                "index": index,
                "size": size,
                "leaf_hash": leaf.leaf_hash,
                "proof": proof,
            }
        )


class _FromTo(serializers.Serializer):
    to = serializers.IntegerField(min_value=1, max_value=MAX_INDEX)

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: added here so the parameter keeps its RFC-style name.
        fields["from"] = serializers.IntegerField(min_value=1, max_value=MAX_INDEX)
        return fields


class ConsistencyProofApi(_PublicApi):
    """RFC 9162 consistency proof between the trees of sizes `from` and `to`."""

    class InputSerializer(_FromTo):
        pass

    class OutputSerializer(_FromTo, ProofSerializer):
        log = serializers.CharField()

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True, description="the older tree's size"),
            OpenApiParameter("to", int, required=True, description="the newer tree's size"),
        ],
        responses={200: OutputSerializer, **ERROR_RESPONSES},
    )
    def get(self, request, round_id: int):
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        first, second = data.validated_data["from"], data.validated_data["to"]
        _round(round_id)
        proof = translog.consistency_proof(round_id=round_id, first=first, second=second)
        return Response({"log": log_name(round_id), "from": first, "to": second, "proof": proof})


class ReceiptByCodeApi(_PublicApi):
    """A result's receipt from the 核验码 printed in the family's result SMS."""

    class OutputSerializer(ReceiptSerializer):
        pass

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request, round_id: int, code: str):
        _round(round_id)
        return Response(translog.receipt_by_code(round_id=round_id, code=code).as_json())
