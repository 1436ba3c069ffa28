"""The event outbox: domain changes record their events in the same transaction, each with
a per-stream sequence number; realtime's relay publishes them after commit."""

from __future__ import annotations

from django.db import models


class Stream(models.Model):
    """A stream's counter. Incremented by an upsert that holds the row until commit, so a
    stream's seqs are contiguous and in commit order for any one writer."""

    name = models.CharField(max_length=80, primary_key=True, verbose_name="名称")
    last_seq = models.PositiveBigIntegerField(default=0, verbose_name="最新序号")
    # Not indexed: every event bumps it, and an unindexed column keeps that update HOT (no
    # index entry written); the relay's once-a-second scan of the streams (streams_active) reads
    # the table instead.
    updated_at = models.DateTimeField(null=True, blank=True, verbose_name="更新时间")

    class Meta:
        verbose_name = "事件流"
        verbose_name_plural = "事件流"


class Event(models.Model):
    stream = models.CharField(max_length=80, verbose_name="事件流")
    seq = models.PositiveBigIntegerField(verbose_name="序号")
    type = models.CharField(max_length=60, verbose_name="类型")
    data = models.JSONField(verbose_name="数据")
    at = models.DateTimeField(verbose_name="时间")
    published_at = models.DateTimeField(null=True, blank=True, verbose_name="发布时间")

    class Meta:
        verbose_name = "事件"
        verbose_name_plural = "事件"
        constraints = [models.UniqueConstraint(fields=["stream", "seq"], name="event_stream_seq")]
        indexes = [
            models.Index(
                fields=["id"],
                name="event_unpublished",
                condition=models.Q(published_at__isnull=True),
            ),
        ]
