"""Real-time fan-out: a burst of confirms reaching N broadcast watchers, against two baselines.

    .venv/bin/python bench/realtime_fanout.py [--clients 2000 --workers 1 --runs 2]
        [--layers core,pubsub] [--systems ours,naive,raw] [--naive-layers core]
        [--client-procs 2] [--fire http] [--split]

The issue: on this 2-core machine, N websocket clients (default 2,000) on loopback and a burst
of 50 confirms in one second; commit-to-receipt latency p50 / p99 and deliveries per second,
for the real path and two baselines measured in the same run:

- ours   — K daphne processes (config.asgi, the real BroadcastConsumer) and the real
           `manage.py realtime_relay` (one frame per stream per 100 ms tick).
- naive  — the same servers and burst, but a bench-only relay (in this file, started instead
           of realtime_relay) that group_sends every event on its own: no coalescing, same
           100 ms polling tick, all sends of a tick on one event loop / Redis connection.
- raw    — K broadcast servers written with the `websockets` library alone (no Django, no
           Channels, no Redis, no database): each broadcasts the same 50 events (same JSON)
           over one second with `websockets.broadcast`, one frame each. The ceiling for
           Python here.

Targets: p99 ≤ 1 s for 2,000 watchers under the burst; deliveries per second ≥ 50 % of the
raw ceiling; a client offline for 30 s is caught up within 2 s.

Set-up (each phase builds a fresh round in `anju_bench_fanout`, dropped and recreated at
start): 50 families seated and entered in one open session, each with a different unit in its
formal cart and a logged-in session (bench/confirm_http.build_world), U units in all (600 by
default, so the board snapshot has a realistic size). N watchers open
`/ws/broadcast/<round>/` (public), spread round-robin over the K servers, from P client
processes (`websockets` asyncio client, no compression, like daphne which negotiates none;
a failed handshake is retried up to 5 times, as a page reconnects). Then the 50 confirms go
out one every 20 ms: `--fire http` (default) POSTs /api/v1/selection/<round>/confirm/ to the
same daphne processes round-robin (the honest end-to-end case: the servers take the confirms
AND fan out); `--fire service` calls selection_confirm from 50 threads of this process, so
the servers only fan out. `--split` starts one more daphne process that takes all the HTTP
(the confirms and the offline client's catch-up) while the K others hold only the sockets, as
nginx can route /ws/ to its own upstream (the raw baseline keeps K servers). `--naive-layers`
limits the naive baseline to some of the layers (it is slow at N = 2,000).

Measures. Commit time: deferred constraint triggers installed in the bench database only
stamp each allocation (the confirm's transaction) and each board event with clock_timestamp()
at its transaction's COMMIT. The board's `unit_taken` is written by the allocation log's
sequencer (`manage.py ledger_sequencer`, started beside the relay), in log order, a tick after
the confirm; latency runs from the confirm's commit, so it includes the sequencer's tick.
(Allocation.at is the confirm view's `now`, taken BEFORE the transaction queues for the family
/ unit locks behind the other confirms; the latency from it is shown too, as "p99 at".)
Receipt time: time.time() in the watcher process when the frame holding the event comes out
of the socket (same machine, same clock). Latency per (watcher, event); deliveries per second
= (watcher, event) deliveries / (last receipt − first commit). For raw, commit time = when the
server built the event, just before broadcasting it. Each phase also prints where an event's
time went (the confirm's now → its commit → the sequencer's commit → relay claim
(published_at) → first watcher → last watcher; and the confirm's 201 → last watcher) and the
CPU seconds of each process group.

Offline catch-up: a separate client opens the socket and reads the board snapshot's heads
(last seq 0), then disconnects before the burst. It comes back twice: right after the 50th
confirm's answer (the servers still fanning the burst out: the worst moment) and after the
watchers are done (idle). Each time, as a page does, it opens the socket and, without waiting
for it, GETs /api/v1/broadcast/<round>/ (heads, then the snapshot) and
/api/v1/streams/round.<round>/events/?after=<last> (repeating while `more`); the time to
holding every missed event is taken. Waiting 30 real seconds would change nothing: the outbox
keeps events in PostgreSQL without expiry and catch-up reads them by seq, so the work depends
on how many events were missed (all 50 of the burst here), not on how long ago.

Exit status 1 only when an invariant breaks: a confirm not answered 201, the database checks
of confirm_http (no unit or family twice, ledger), a frame whose events differ from the
outbox, a watcher that could not connect, no delivery at all, or a catch-up that did not get
every event. Slowness and at-most-once losses are reported, not failed.

Variants (`--layers`): "core" and "pubsub" run the servers on config.settings with
REALTIME_CHANNEL_LAYER set to that layer (the app as shipped). Any other value runs the
servers and relays with DJANGO_SETTINGS_MODULE set to this module, which is then
config.settings with the bench-only patches below; they prototyped proposals 1-3 of
docs/BENCHMARKS.md on commit d9ac080, which are now in the app (f3ca24c, 276d745), so
they only make sense checked out at that commit:
  pubsub  CHANNEL_LAYERS → channels_redis.pubsub.RedisPubSubChannelLayer (same host options);
  +fast   channels' consumer dispatch patched so `stream.frame` messages skip its per-message
          close_old_connections thread hop;
  +hub    stream groups joined once per process; a hub task hands each frame's text to the
          local sockets (no per-socket queue / task / dispatch per frame);
  +loop   ours' relay replaced by the same coalesced frames sent from one persistent event
          loop, Redis connection and database connection.
These prototype the proposals in docs/BENCHMARKS.md. `--py-spy PATH` profiles the daphne and
relay processes during each daphne phase.
"""

from __future__ import annotations

import os

LAYER_ENV = "ANJU_FANOUT_LAYER"  # "core+fast" etc.: see --layers

if __name__ == "bench.realtime_fanout" and os.environ.get("DJANGO_SETTINGS_MODULE") == __name__:
    # Imported by a bench server or relay as its settings module: the app's settings with
    # the --layers switches (the proposals of docs/BENCHMARKS.md), none applied to the app.
    from config.settings import *  # noqa: F403
    from config.settings import REDIS_URL as _REDIS_URL
    from config.settings import redis_host as _redis_host

    _layer, *_flags = os.environ.get(LAYER_ENV, "core").split("+")
    if _layer == "pubsub":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {
                    "hosts": [_redis_host(_REDIS_URL)],
                    "prefix": os.environ.get("REDIS_PREFIX", "anju"),
                },
            }
        }
    if "fast" in _flags:
        # channels 4.3's AsyncConsumer.dispatch runs close_old_connections through
        # sync_to_async (one shared thread) before EVERY message: 2,000 thread hops per
        # frame. realtime's frames touch no database, so they skip it (proposal 1).
        import channels.consumer as _consumer

        _dispatch = _consumer.AsyncConsumer.dispatch

        async def _frame_fast_dispatch(self, message):
            if message.get("type") == "stream.frame":
                await self.stream_frame(message)
            else:
                await _dispatch(self, message)

        _consumer.AsyncConsumer.dispatch = _frame_fast_dispatch

    if "hub" in _flags:
        # Proposal 3, prototyped: one channel-layer membership per stream per PROCESS (not
        # per socket); a hub task receives each frame once and hands its text straight to
        # the local sockets (consumer.base_send = daphne's reply path). No per-socket queue,
        # receive task, dispatch, deserialisation or thread hop per frame.
        import asyncio as _asyncio
        import json as _json

        import channels.consumer as _consumer

        _dispatch = _consumer.AsyncConsumer.dispatch
        _hubs: dict = {}

        class _Hub:
            def __init__(self, layer) -> None:
                self.layer, self.sockets, self.channel, self.started = layer, {}, None, None

            async def start(self) -> None:
                self.channel = await self.layer.new_channel()
                self.task = _asyncio.get_running_loop().create_task(self.pump())

            async def join(self, group: str, consumer) -> None:
                if self.started is None:
                    self.started = _asyncio.get_running_loop().create_task(self.start())
                await _asyncio.shield(self.started)
                members = self.sockets.setdefault(group, set())
                if not members:
                    await self.layer.group_add(group, self.channel)
                members.add(consumer)

            async def leave(self, group: str, consumer) -> None:
                self.sockets.get(group, set()).discard(consumer)

            async def pump(self) -> None:
                while True:
                    message = await self.layer.receive(self.channel)
                    text = message.get("text", "")
                    try:
                        body = _json.loads(text)
                    except ValueError:
                        continue
                    streams = [body["stream"]] if "stream" in body else body.get("streams", [])
                    reply = {"type": "websocket.send", "text": text}
                    for stream in streams:
                        for consumer in list(self.sockets.get(f"ev.{stream}", ())):
                            try:
                                await consumer.base_send(reply)
                            except Exception:  # a closing socket: its disconnect leaves
                                pass

        class _HubLayer:
            """The consumer's channel layer, with its stream groups joined through the hub."""

            def __init__(self, layer, consumer) -> None:
                self._layer, self._consumer = layer, consumer
                loop = _asyncio.get_running_loop()
                self._hub = _hubs.get(loop) or _hubs.setdefault(loop, _Hub(layer))

            async def group_add(self, group, channel):
                await self._hub.join(group, self._consumer)

            async def group_discard(self, group, channel):
                await self._hub.leave(group, self._consumer)

            def __getattr__(self, name):
                return getattr(self._layer, name)

        async def _hub_dispatch(self, message):
            if message.get("type") == "websocket.connect" and hasattr(self, "stream_frame"):
                self.channel_layer = _HubLayer(self.channel_layer, self)
            await _dispatch(self, message)

        _consumer.AsyncConsumer.dispatch = _hub_dispatch

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _lib  # noqa: E402

DB_NAME = _lib.db_name("anju_bench_fanout")
EVENTS = 50  # confirms in the burst
STARTUP_SECONDS = 30
CONNECT_TIMEOUT = 180.0  # all N watchers connected
CONNECT_CONCURRENCY = 20  # handshakes in flight per client process (daphne's backlog is 50)
CONNECT_ATTEMPTS = 5
SETTLE_SECONDS = 60.0
HTTP_TIMEOUT = 30.0
CATCH_UP_TIMEOUT = 30.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients",
        default="2000",
        help="watchers N; a comma list (250,500,1000,2000) gives a scaling line",
    )
    parser.add_argument("--workers", type=int, default=1, help="K daphne (and raw) processes")
    parser.add_argument("--runs", type=int, default=2, help="measured runs per N")
    parser.add_argument(
        "--layers",
        default="core",
        help="core / pubsub = the app with REALTIME_CHANNEL_LAYER=core / pubsub; "
        "+fast = frames skip channels' per-message close_old_connections; +hub = one layer "
        "membership per stream per process, frames handed to local sockets; +loop = ours' "
        "relay on one persistent event loop and DB connection (bench-only patches)",
    )
    parser.add_argument("--systems", default="ours,naive,raw")
    parser.add_argument(
        "--naive-layers",
        default="",
        help="the layers naive runs on (default: every one of --layers), e.g. core",
    )
    parser.add_argument("--client-procs", type=int, default=2, help="P watcher processes")
    parser.add_argument(
        "--backlog",
        type=int,
        default=0,
        help="daphne listen backlog (default: as deployed, Twisted's 50; see confirm_http)",
    )
    parser.add_argument("--units", type=int, default=600, help="units in each round")
    parser.add_argument("--burst-seconds", type=float, default=1.0)
    parser.add_argument(
        "--fire",
        choices=("http", "service"),
        default="http",
        help="confirms through HTTP to the daphne processes (default), or selection_confirm "
        "called from threads of the benchmark process (the servers only fan out)",
    )
    parser.add_argument("--tick", type=float, default=0.1, help="the naive relay's tick")
    parser.add_argument(
        "--deadline", type=float, default=90.0, help="seconds after the burst to wait for receipts"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="one more daphne process takes all HTTP (confirms, catch-up); the K others only "
        "the sockets (as nginx could route /ws/ to its own upstream)",
    )
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument(
        "--py-spy",
        default="",
        metavar="PATH",
        help="py-spy executable: profile the daphne and relay processes of every daphne phase",
    )
    args = parser.parse_args()
    args.clients = [int(n) for n in str(args.clients).split(",") if n.strip()]
    args.layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    args.systems = [x.strip() for x in args.systems.split(",") if x.strip()]
    args.naive_layers = [x.strip() for x in args.naive_layers.split(",") if x.strip()]
    args.naive_layers = args.naive_layers or args.layers
    if set(args.naive_layers) - set(args.layers):
        parser.error("--naive-layers: a subset of --layers")
    if not args.clients or min(args.clients) < 1 or max(args.clients) > 10_000:
        parser.error("--clients: 1..10000")
    if not 1 <= args.workers <= 4 or not 1 <= args.client_procs <= 8 or args.runs < 1:
        parser.error("--workers 1..4, --client-procs 1..8, --runs ≥ 1")
    if set(args.layers) - set(LAYERS) or set(args.systems) - {"ours", "naive", "raw"}:
        parser.error(f"--layers from {','.join(LAYERS)}; --systems from ours,naive,raw")
    if args.units < EVENTS:
        parser.error(f"--units ≥ {EVENTS}")
    return args


# ------------------------------------------------------------------------- frames


def event_frame_text(stream: str, seq: int, at: float, data: dict) -> str:
    """The shape of realtime.protocol.events_frame for one event (the raw server's frames)."""
    return json.dumps(
        {
            "type": "events",
            "stream": stream,
            "from": seq,
            "to": seq,
            "server_time": int(time.time() * 1000),
            "events": [
                {
                    "seq": seq,
                    "type": "selection.unit_taken",
                    "at": datetime.fromtimestamp(at, UTC).isoformat(),
                    "data": data,
                }
            ],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def synthetic_event_data(count: int) -> list[dict]:
    return [
        {
            "unit": {
                "id": 900_000 + i,
                "building": "1",
                "number": f"{i // 10 + 2:02d}{i % 10 + 1:02d}",
                "label": f"1栋{i // 10 + 2:02d}{i % 10 + 1:02d}",
                "layout": "1b",
                "orientation": "S",
            },
            "how": "confirmed",
            "how_label": "家庭确认正选",
            "entry": i + 1,
            "index": i,
        }
        for i in range(count)
    ]


# ----------------------------------------------------------------- the naive relay


def bench_relay_main(mode: str, tick: float) -> None:
    """Bench-only relays, started instead of `manage.py realtime_relay`.

    naive: like realtime.relay.relay_run (same claim with SKIP LOCKED, same 100 ms tick,
        close_old_connections every tick, same frame encoder) but one group_send per event:
        no coalescing. All sends of a tick run on one event loop, so each event costs one
        group_send and nothing more.
    loop:  realtime's coalesced frames (relay._frames) sent from ONE persistent event loop and
        layer connection, keeping its database connection between ticks (proposal 2: relay_run
        opens a new event loop, hence a new Redis connection, per group_send via
        async_to_sync, and with CONN_MAX_AGE=0 a new PostgreSQL connection every tick).
    Both send the heads heartbeat every 5 s like relay_run."""
    _lib.setup_django_only()
    from channels.layers import get_channel_layer
    from django.db import close_old_connections, connection, transaction
    from django.utils import timezone

    from events.services import streams_active
    from realtime.protocol import events_frame, group_name, heads_frame
    from realtime.relay import (
        BATCH,
        HEADS_EVERY_SECONDS,
        HEADS_WINDOW,
        _frames,
        _mark_published,
        _unpublished,
    )

    stop = [False]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.__setitem__(0, True))
    layer = get_channel_layer()

    def frames_of(events) -> list[tuple[str, str]]:
        if mode == "loop":
            return _frames(events)
        return [
            (group_name(e.stream), events_frame(e.stream, [e]))
            for e in sorted(events, key=lambda e: (e.stream, e.seq))
        ]

    async def send(frames: list[tuple[str, str]]) -> None:
        for group, text in frames:
            await layer.group_send(group, {"type": "stream.frame", "text": text})

    loop = asyncio.new_event_loop()
    next_heads = time.monotonic()
    print(f"{mode} relay running", flush=True)
    try:
        while not stop[0]:
            try:
                if mode == "naive":
                    close_old_connections()
                with transaction.atomic():
                    events = _unpublished(BATCH)
                    if events:
                        loop.run_until_complete(send(frames_of(events)))
                        _mark_published(events)
                if time.monotonic() >= next_heads:
                    heads = streams_active(since=timezone.now() - HEADS_WINDOW)
                    loop.run_until_complete(
                        send([(group_name(s), heads_frame({s: q})) for s, q in heads.items()])
                    )
                    next_heads = time.monotonic() + HEADS_EVERY_SECONDS
            except Exception as exc:  # as relay_run: retry next tick, on a fresh connection
                print(f"relay tick failed: {exc!r}", flush=True)
                connection.close()
            time.sleep(tick)
    finally:
        loop.close()


# --------------------------------------------------------------------- raw server


def raw_server_main(port: int) -> None:
    """A broadcast server with the `websockets` library alone. Watchers connect on any path
    and get a hello; a client on /control sends {"t0", "interval", "stream", "events"} and
    the server broadcasts event i at t0 + i × interval, each its own frame, then answers
    with the times it built them."""
    _lib.raise_fd_limit()
    from websockets.asyncio.server import broadcast, serve
    from websockets.exceptions import ConnectionClosed

    watchers: set = set()
    hello = json.dumps({"type": "hello", "streams": ["raw"], "server_time": 0})

    async def burst(order: dict) -> list[float]:
        sent = []
        start = order["t0"]
        for i, data in enumerate(order["events"]):
            delay = start + i * order["interval"] - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            at = time.time()
            broadcast(watchers, event_frame_text(order["stream"], i + 1, at, data))
            sent.append(at)
            await asyncio.sleep(0)  # let the loop flush, as a real server would between events
        return sent

    async def handler(ws) -> None:
        if ws.request.path == "/control":
            order = json.loads(await ws.recv())
            await ws.send(json.dumps(await burst(order)))
            return
        await ws.send(hello)
        watchers.add(ws)
        try:
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            watchers.discard(ws)

    async def run() -> None:
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        async with serve(
            handler,
            "127.0.0.1",
            port,
            compression=None,
            ping_interval=None,
            backlog=1024,
            max_size=2**20,
        ):
            print("raw server running", flush=True)
            await stop

    asyncio.run(run())


# ------------------------------------------------------------------ watcher processes


class _Watcher:
    __slots__ = ("ws", "index", "port_index", "got", "dups", "frames", "hello", "done", "task")

    def __init__(self, index: int, port_index: int) -> None:
        self.index, self.port_index = index, port_index
        self.got: dict[int, float] = {}
        self.dups = self.frames = 0
        self.done = False
        self.ws = self.task = self.hello = None


def _parse(text: str) -> tuple[str, tuple]:
    try:
        message = json.loads(text)
    except ValueError:
        return "bad", ()
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "events":
        return "events", tuple(e["seq"] for e in message["events"])
    return str(kind), ()


async def _watcher_loop(conn) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    watchers: list[_Watcher] = []
    cache: dict[str, tuple] = {}  # every watcher of a phase gets the same texts: parse once
    phase = {"expected": None, "remaining": 0, "all": None}

    async def read(w: _Watcher) -> None:
        try:
            async for text in w.ws:
                t = time.time()
                parsed = cache.get(text)
                if parsed is None:
                    parsed = cache[text] = _parse(text)
                kind, seqs = parsed
                if kind == "events":
                    w.frames += 1
                    got = w.got
                    for seq in seqs:
                        if seq in got:
                            w.dups += 1
                        else:
                            got[seq] = t
                    expected = phase["expected"]
                    if expected is not None and not w.done and len(got) >= expected:
                        w.done = True
                        phase["remaining"] -= 1
                        if phase["remaining"] <= 0:
                            phase["all"].set()
                elif kind == "hello" and not w.hello.done():
                    w.hello.set_result(t)
        except ConnectionClosed:
            pass

    retries = [0]

    async def open_one(w: _Watcher, url: str, origin: str, gate: asyncio.Semaphore) -> str:
        """Open a watcher's socket and wait for its hello; a refused or dropped handshake is
        retried (as a page reconnects) up to CONNECT_ATTEMPTS times."""
        error = ""
        for attempt in range(CONNECT_ATTEMPTS):
            if attempt:
                retries[0] += 1
                await asyncio.sleep(0.5 * attempt)
            async with gate:
                try:
                    w.ws = await connect(
                        url,
                        origin=origin,
                        compression=None,
                        ping_interval=None,
                        open_timeout=60,
                        close_timeout=2,
                        max_size=2**22,
                    )
                except Exception as exc:  # retried, then counted as a failed watcher
                    error = f"{exc.__class__.__name__}: {exc}"[:200]
                    continue
                w.hello = loop.create_future()
                w.task = asyncio.create_task(read(w))
                try:
                    await asyncio.wait_for(asyncio.shield(w.hello), 60)
                    return ""
                except TimeoutError:
                    return "no hello in 60 s"
        return error

    while True:
        command, *params = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            (targets,) = params
            started = time.perf_counter()
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            batch = [_Watcher(index, port_index) for index, _, _, port_index in targets]
            errors = await asyncio.gather(
                *(
                    open_one(w, url, origin, gate)
                    for w, (_, url, origin, _) in zip(batch, targets, strict=True)
                )
            )
            watchers.extend(batch)
            failed = [e for e in errors if e]
            elapsed = time.perf_counter() - started
            conn.send(("connected", len(batch) - len(failed), failed[:3], elapsed, retries[0]))
            retries[0] = 0
        elif command == "collect":
            expected, deadline = params
            usage = resource.getrusage(resource.RUSAGE_SELF)
            phase["expected"], phase["all"] = expected, asyncio.Event()
            phase["remaining"] = 0
            for w in watchers:
                w.done = len(w.got) >= expected
                phase["remaining"] += 0 if w.done else 1
            if phase["remaining"] > 0:
                try:
                    await asyncio.wait_for(phase["all"].wait(), deadline)
                except TimeoutError:
                    pass
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
            frames = [text for text, (kind, _) in cache.items() if kind == "events"]
            result = [
                (w.index, w.port_index, list(w.got.items()), w.dups, w.frames) for w in watchers
            ]
            phase["expected"] = None
            conn.send(("collected", result, frames, cpu))
        elif command == "close":
            await asyncio.gather(
                *(w.ws.close() for w in watchers if w.ws is not None), return_exceptions=True
            )
            for w in watchers:
                if w.task is not None:
                    w.task.cancel()
            await asyncio.gather(
                *(w.task for w in watchers if w.task is not None), return_exceptions=True
            )
            closed = len(watchers)
            watchers.clear()
            cache.clear()
            conn.send(("closed", closed))
        elif command == "quit":
            return


def watcher_process(conn) -> None:
    _lib.raise_fd_limit()
    try:
        asyncio.run(_watcher_loop(conn))
    except (EOFError, KeyboardInterrupt):
        pass


class WatcherPool:
    """P processes holding the watchers; commands over pipes, every wait bounded."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        self.retries = 0
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=watcher_process, args=(child,), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def _replies(self, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        replies = []
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"watcher process {process.pid} did not answer in {timeout} s")
            replies.append(pipe.recv())
        return replies

    def connect(self, targets: list[tuple]) -> tuple[int, list[str], float]:
        """targets: (index, url, origin, port index); spread over the processes so each holds
        watchers of every server."""
        share = [[] for _ in self.pipes]
        for position, target in enumerate(targets):
            share[position % len(self.pipes)].append(target)
        for pipe, part in zip(self.pipes, share, strict=True):
            pipe.send(("connect", part))
        replies = self._replies(CONNECT_TIMEOUT + 30)
        ok = sum(r[1] for r in replies)
        errors = [e for r in replies for e in r[2]]
        self.retries = sum(r[4] for r in replies)
        return ok, errors, max(r[3] for r in replies)

    def collect_start(self, expected: int, deadline: float) -> None:
        for pipe in self.pipes:
            pipe.send(("collect", expected, deadline))

    def collect_finish(self, timeout: float) -> tuple[list, set[str], float]:
        rows, frames, cpu = [], set(), 0.0
        for reply in self._replies(timeout):
            rows.extend(reply[1])
            frames.update(reply[2])
            cpu += reply[3]
        return rows, frames, cpu

    def close_all(self) -> int:
        for pipe in self.pipes:
            pipe.send(("close",))
        return sum(r[1] for r in self._replies(120))

    def quit(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("quit",))
            except OSError:
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


# ------------------------------------------------------------------ helper processes


class Helper:
    """One subprocess (relay or raw server) with its log; started ready, stopped on exit."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path, ready: str):
        self.name, self.log = name, log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 (fixed commands)
                command, cwd=_lib.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while ready not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} not ready in time:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        return _lib.proc_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def settle(pids: list[int], timeout: float = SETTLE_SECONDS) -> float:
    """Wait until the given processes use < 5 % of a core over 0.5 s (the previous phase's
    backlog drained); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(_lib.proc_cpu_seconds(p) for p in pids)
        time.sleep(0.5)
        if sum(_lib.proc_cpu_seconds(p) for p in pids) - before < 0.025 * len(pids):
            break
    return time.monotonic() - started


def redis_cpu() -> float:
    import redis

    client = redis.Redis.from_url(_lib.REDIS_URL, socket_timeout=5)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_forget(prefix: str) -> int:
    """Drop what earlier runs of this benchmark left under its key prefix (bounded scan)."""
    import redis

    client = redis.Redis.from_url(_lib.REDIS_URL, socket_timeout=5)
    dropped = 0
    try:
        for n, key in enumerate(client.scan_iter(match=f"{prefix}*", count=1000)):
            if n >= 200_000:
                break
            dropped += client.delete(key)
    finally:
        client.close()
    return dropped


class Profiler:
    """py-spy record (GIL holder only, non-blocking) on the given processes while a phase's
    burst runs; then the top functions by inclusive and by own samples."""

    def __init__(self, py_spy: str, out_dir: Path, label: str, pids: dict[str, int]) -> None:
        self.records, self.enabled = [], bool(py_spy)
        if not self.enabled:
            return
        out_dir.mkdir(exist_ok=True)
        for name, pid in pids.items():
            out = out_dir / f"{label}-{name}.txt"
            process = subprocess.Popen(  # noqa: S603 (the given py-spy)
                [py_spy, "record", "--pid", str(pid), "--format", "raw", "--gil"]
                + ["--nonblocking", "--rate", "200", "--duration", "600", "-o", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.records.append((name, out, process))
        time.sleep(1.0)  # attached

    def stop(self) -> str:
        if not self.enabled:
            return ""
        lines = []
        records, self.records = self.records, []
        for name, out, process in records:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            lines.append(f"    profile {name} ({out}):\n" + summarize_profile(out))
        return "\n".join(lines)


def summarize_profile(path: Path, top: int = 14) -> str:
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "      (no profile written)"
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    if not total:
        return "      (no samples)"

    def rows(table: dict[str, int]) -> str:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return "\n".join(f"        {100 * n / total:5.1f}%  {frame[:150]}" for frame, n in ranked)

    return (
        f"      {total} samples (200/s, GIL holder); inclusive:\n{rows(inclusive)}\n"
        f"      own:\n{rows(own)}"
    )


# --------------------------------------------------------------- the burst (HTTP)


async def fire_burst(world, targets, session_keys, ports, burst_seconds, catch_up_ports, last):
    """The confirms, one every burst_seconds / n, round-robin over the servers; then, as soon
    as the last is answered, the offline client's catch-up (the servers still fanning out)."""
    import httpx

    n = len(targets)
    interval = burst_seconds / n
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(HTTP_TIMEOUT), limits=httpx.Limits(max_connections=n)
    ) as client:

        async def confirm(i: int, start: float) -> dict:
            port = ports[i % len(ports)]
            csrf = secrets.token_hex(16)
            delay = start + i * interval - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.time()
            try:
                response = await client.post(
                    f"http://127.0.0.1:{port}/api/v1/selection/{world.round_id}/confirm/",
                    content=json.dumps(
                        {
                            "unit_id": targets[i],
                            "idempotency_key": f"fan-{i}-{secrets.token_hex(4)}",
                        }
                    ),
                    headers={
                        "Content-Type": "application/json",
                        "Cookie": f"sessionid={session_keys[i]}; csrftoken={csrf}",
                        "X-CSRFToken": csrf,
                        "Origin": f"http://127.0.0.1:{port}",
                    },
                )
                status, body = response.status_code, response.text
            except httpx.HTTPError as exc:
                status, body = 0, f"{exc.__class__.__name__}: {exc}"
            done = time.time()
            return {
                "i": i,
                "status": status,
                "body": body,
                "ms": (done - sent) * 1000,
                "done": done,
            }

        start = time.time() + 0.05
        results = await asyncio.wait_for(
            asyncio.gather(*(confirm(i, start) for i in range(n))),
            timeout=burst_seconds + HTTP_TIMEOUT + 5,
        )
        busy = await catch_up(client, *catch_up_ports, world.round_id, last)
    return results, busy


def fire_service(world, targets, burst_seconds: float) -> list[dict]:
    """--fire service: the confirms through selection.allocation.selection_confirm itself,
    from 50 threads of this process (each its own database connection), one every
    burst_seconds / n: the servers then only fan out."""
    import json as json_
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from django.utils import timezone

    from accounts.models import Family
    from core.errors import DomainError
    from selection.allocation import selection_confirm

    n = len(targets)
    families = Family.objects.in_bulk(world.family_ids)
    start = time.time() + 0.2

    def one(i: int) -> dict:
        delay = start + i * burst_seconds / n - time.time()
        if delay > 0:
            time.sleep(delay)
        sent = time.time()
        try:
            result = selection_confirm(
                family=families[world.family_ids[i]],
                round_id=world.round_id,
                unit_id=targets[i],
                idempotency_key=f"fan-{i}-{secrets.token_hex(4)}",
                now=timezone.now(),
            )
            status, body = (201 if result.created else 200), ""
        except DomainError as exc:
            status = 409 if exc.kind == "conflict" else 400
            body = json_.dumps({"error": {"code": exc.code}})
        except Exception as exc:  # reported by the checks
            status, body = 0, repr(exc)
        finally:
            connection.close()
        done = time.time()
        return {"i": i, "status": status, "body": body, "ms": (done - sent) * 1000, "done": done}

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n), timeout=burst_seconds + HTTP_TIMEOUT + 5))


async def offline_prepare(http_port: int, ws_port: int, round_id: int) -> int:
    """The client that goes offline: socket up, snapshot heads read, socket closed."""
    import httpx
    from websockets.asyncio.client import connect

    async with connect(
        f"ws://127.0.0.1:{ws_port}/ws/broadcast/{round_id}/",
        origin=f"http://127.0.0.1:{ws_port}",
        compression=None,
        open_timeout=30,
    ) as ws:
        await asyncio.wait_for(ws.recv(), 30)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            response = await client.get(
                f"http://127.0.0.1:{http_port}/api/v1/broadcast/{round_id}/"
            )
            response.raise_for_status()
            return response.json()["heads"][f"round.{round_id}"]


async def catch_up(client, http_port: int, ws_port: int, round_id: int, last: int) -> dict:
    """Reconnect as a page does (docs/REALTIME.md, rules 1-3): open the socket and, without
    waiting for it, GET the snapshot (heads first) and the events after `last` until `more`
    is false. Returns the time to holding every event of the burst; the socket's time (or
    its failure: the page would then poll) is reported beside it. The board's events are
    written by the allocation log's sequencer a tick after the confirms, so a reconnect
    right after the last confirm's answer may find a head short of the burst: it reads again
    (as the page's socket would then bring the rest), and the count of reads is reported."""
    from websockets.asyncio.client import connect

    stream = f"round.{round_id}"
    started = time.perf_counter()

    async def open_socket() -> str:
        try:
            async with connect(
                f"ws://127.0.0.1:{ws_port}/ws/broadcast/{round_id}/",
                origin=f"http://127.0.0.1:{ws_port}",
                compression=None,
                open_timeout=CATCH_UP_TIMEOUT,
            ) as ws:
                await ws.recv()  # hello
                return f"{(time.perf_counter() - started) * 1000:,.0f} ms"
        except Exception as exc:  # reported, not failed: the page falls back to polling
            return f"failed after {(time.perf_counter() - started) * 1000:,.0f} ms: {exc!r:.80}"

    async def fetch(after: int, seqs: set[int]) -> tuple[int, int]:
        base = f"http://127.0.0.1:{http_port}/api/v1"
        snapshot = await client.get(f"{base}/broadcast/{round_id}/")
        snapshot.raise_for_status()
        head = snapshot.json()["heads"][stream]
        for _ in range(100):  # 500 events a page
            page = await client.get(
                f"{base}/streams/{stream}/events/",
                params={"after": after},
            )
            page.raise_for_status()
            body = page.json()
            seqs.update(e["seq"] for e in body["events"])
            if body["events"]:
                after = body["events"][-1]["seq"]
            if not body["more"]:
                break
        return head, after

    sock = asyncio.create_task(open_socket())
    seqs: set[int] = set()
    reads = 0
    try:
        async with asyncio.timeout(CATCH_UP_TIMEOUT):
            head, after = 0, last
            while head < EVENTS:
                if reads:
                    await asyncio.sleep(0.02)  # the sequencer's tick is 0.1 s
                head, after = await fetch(after, seqs)
                reads += 1
        elapsed = (time.perf_counter() - started) * 1000
    except Exception as exc:  # reported as a failed catch-up
        sock.cancel()
        return {"ms": (time.perf_counter() - started) * 1000, "ok": False, "error": repr(exc)}
    try:
        socket_note = await asyncio.wait_for(sock, CATCH_UP_TIMEOUT)
    except TimeoutError:
        socket_note = "not open in time"
    missing = set(range(last + 1, head + 1)) - seqs
    return {
        "ms": elapsed,
        "socket": socket_note,
        "ok": not missing and head >= EVENTS,
        "head": head,
        "reads": reads,
        "error": f"missing {sorted(missing)[:5]}" if missing else "",
    }


async def catch_up_idle(http_port: int, ws_port: int, round_id: int, last: int) -> dict:
    import httpx

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        return await catch_up(client, http_port, ws_port, round_id, last)


async def raw_burst(ports: list[int], stream: str, data: list[dict], burst_seconds: float):
    """Tell every raw server to broadcast the events from the same start; their build times."""
    from websockets.asyncio.client import connect

    order = {
        "t0": time.time() + 0.1,
        "interval": burst_seconds / len(data),
        "stream": stream,
        "events": data,
    }

    async def one(port: int) -> list[float]:
        async with connect(f"ws://127.0.0.1:{port}/control", compression=None) as ws:
            await ws.send(json.dumps(order))
            return json.loads(await asyncio.wait_for(ws.recv(), burst_seconds + 60))

    return await asyncio.gather(*(one(p) for p in ports))


# ------------------------------------------------------------------------ analysis


@dataclass
class Phase:
    system: str
    layer: str
    n: int
    workers: int
    split: bool = False  # --split: one more daphne process took all HTTP
    p50: float = float("nan")
    p99: float = float("nan")
    max: float = float("nan")
    rate: float = 0.0
    p50_at: float = float("nan")  # from Event.at (the view's `now`, before the locks)
    p99_at: float = float("nan")
    received: int = 0
    expected: int = 0
    dups: int = 0
    frames: float = 0.0
    window: float = 0.0
    connect_s: float = 0.0
    retries: int = 0
    confirm_p99: float = float("nan")
    busy: dict = field(default_factory=dict)
    idle: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    load: float = 0.0
    stages: str = ""
    profile: str = ""

    @property
    def label(self) -> str:
        return self.system if self.system == "raw" else f"{self.system}[{self.layer}]"


def analyse(
    phase: Phase,
    rows: list,
    commit_at: list[dict[int, float]],
    event_at: list[dict[int, float]] | None = None,
) -> None:
    """Latency per (watcher, event) from the commit, and from Event.at when given."""
    latencies, from_at, last_receipt, frames = [], [], 0.0, 0
    for _, port_index, got, dups, frame_count in rows:
        commits = commit_at[port_index]
        ats = event_at[port_index] if event_at else None
        phase.dups += dups
        frames += frame_count
        for seq, t in got:
            if seq in commits:
                latencies.append((t - commits[seq]) * 1000)
                last_receipt = max(last_receipt, t)
                if ats is not None:
                    from_at.append((t - ats[seq]) * 1000)
    if from_at:
        phase.p50_at = _lib.percentile(from_at, 50)
        phase.p99_at = _lib.percentile(from_at, 99)
    phase.received = len(latencies)
    phase.frames = frames / max(1, len(rows))
    if latencies:
        phase.p50 = _lib.percentile(latencies, 50)
        phase.p99 = _lib.percentile(latencies, 99)
        phase.max = max(latencies)
        first_commit = min(min(c.values()) for c in commit_at)
        phase.window = last_receipt - first_commit
        phase.rate = phase.received / phase.window if phase.window > 0 else 0.0


def stages(
    rows: list,
    outbox: dict[int, dict],
    at: dict[int, float],
    commit: dict[int, float],
    sequenced: dict[int, float],
    answered: dict[int, float],
) -> str:
    """Where an event's time goes: the confirm view's `now` → the confirm's commit (waiting
    for the family / unit locks behind the other confirms) → the sequencer's commit of the
    board's `unit_taken` (the allocation log's tick) → the relay claims it (published_at:
    waiting for the tick, the claim) → the first watcher has it → the last. Beside it: the
    confirm's HTTP 201 → the last watcher (what the board's viewers wait after a family's
    confirm was answered)."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for _, _, got, _, _ in rows:
        for seq, t in got:
            first[seq] = min(first.get(seq, t), t)
            last[seq] = max(last.get(seq, t), t)
    locks, sequencing, claim, to_first, spread, answer_last = [], [], [], [], [], []
    for seq, row in outbox.items():
        if row["published"] is None or seq not in first:
            continue
        published = row["published"].timestamp()
        if row["data"]["unit"]["id"] in answered:
            answer_last.append((last[seq] - answered[row["data"]["unit"]["id"]]) * 1000)
        locks.append((commit[seq] - at[seq]) * 1000)
        sequencing.append((sequenced[seq] - commit[seq]) * 1000)
        claim.append((published - sequenced[seq]) * 1000)
        to_first.append((first[seq] - published) * 1000)
        spread.append((last[seq] - first[seq]) * 1000)
    if not claim:
        return ""

    def p(values: list[float]) -> str:
        return f"{_lib.percentile(values, 50):,.0f}/{_lib.percentile(values, 99):,.0f}"

    commits = list(commit.values())
    return (
        f"50 commits over {max(commits) - min(commits):.1f} s; "
        f"p50/p99 ms: confirm's now→commit {p(locks)}, commit→sequencer's commit "
        f"{p(sequencing)}, →claimed {p(claim)}, →1st watcher {p(to_first)}, 1st→last watcher "
        f"{p(spread)}; confirm's 201→last watcher {p(answer_last) if answer_last else '-'}"
    )


def verify_frames(frames: set[str], round_id: int, outbox: dict[int, dict]) -> list[str]:
    """Every events frame a watcher saw holds exactly outbox events, contiguous, in order."""
    problems = []
    stream = f"round.{round_id}"
    for text in frames:
        message = json.loads(text)
        seqs = [e["seq"] for e in message["events"]]
        if message["stream"] != stream:
            problems.append(f"frame of stream {message['stream']!r}")
        if seqs != list(range(message["from"], message["to"] + 1)):
            problems.append(f"frame {message['from']}..{message['to']} holds seqs {seqs}")
        for event in message["events"]:
            row = outbox.get(event["seq"])
            if row is None or any(event[k] != row[k] for k in ("type", "at", "data")):
                problems.append(f"event {event['seq']} differs from the outbox")
    return problems[:5]


def _commit_stamp_sql(stamps: str, key: str, table: str, column: str) -> str:
    """A table `stamps` (key → committed) filled at COMMIT by a deferred trigger on `table`."""
    return f"""
CREATE TABLE IF NOT EXISTS {stamps} ({key} bigint PRIMARY KEY, committed timestamptz);
CREATE OR REPLACE FUNCTION {stamps}_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {stamps} VALUES (NEW.{column}, clock_timestamp());
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER {stamps}_at AFTER INSERT ON {table}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {stamps}_stamp();
"""


COMMIT_STAMP_SQL = _commit_stamp_sql(
    "bench_commit", "event_id", "events_event", "id"
) + _commit_stamp_sql("bench_allocation_commit", "unit_id", "selection_allocation", "unit_id")


def install_commit_stamp() -> None:
    """Bench database only: deferred constraint triggers run at COMMIT, so they stamp each
    allocation (the confirm's transaction) and each event (the sequencer's, which writes the
    board's `unit_taken` a tick later) with the clock at its transaction's commit
    (Allocation.at is the confirm view's `now`, taken before the transaction waits for its
    locks)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(COMMIT_STAMP_SQL)


def outbox_of(round_id: int) -> dict[int, dict]:
    from django.db import connection

    from events.models import Event
    from selection.models import Allocation

    events = list(Event.objects.filter(stream=f"round.{round_id}").order_by("seq"))
    confirmed_at = dict(Allocation.objects.filter(round_id=round_id).values_list("unit_id", "at"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, committed FROM bench_commit WHERE event_id = ANY(%s)",
            [[e.pk for e in events]],
        )
        committed = {pk: stamp.timestamp() for pk, stamp in cursor.fetchall()}
        cursor.execute(
            "SELECT unit_id, committed FROM bench_allocation_commit WHERE unit_id = ANY(%s)",
            [list(confirmed_at)],
        )
        confirmed = {unit: stamp.timestamp() for unit, stamp in cursor.fetchall()}
    outbox = {}
    for e in events:
        unit = e.data["unit"]["id"]
        outbox[e.seq] = {
            "type": e.type,
            "at": e.at.isoformat(),
            "data": e.data,
            "published": e.published_at,
            "committed": committed.get(e.pk),
            # The confirm behind the event: the view's `now`, and its transaction's commit.
            "confirm_at": confirmed_at[unit].timestamp() if unit in confirmed_at else None,
            "confirmed": confirmed.get(unit),
        }
    return outbox


# --------------------------------------------------------------------------- phases


class Bench:
    def __init__(self, args, pool: WatcherPool, log_dir: Path) -> None:
        self.args, self.pool, self.log_dir = args, pool, log_dir
        self.world_no = 0
        self.sample_data: list[dict] | None = None

    def watcher_targets(self, n: int, ports: list[int], path: str) -> list[tuple]:
        return [
            (
                g,
                f"ws://127.0.0.1:{ports[g % len(ports)]}{path}",
                f"http://127.0.0.1:{ports[g % len(ports)]}",
                g % len(ports),
            )
            for g in range(n)
        ]

    def daphne_phase(self, system: str, layer: str, servers, env: dict, n: int) -> Phase:
        from bench import confirm_http

        args = self.args
        # --split: the first process takes the HTTP (confirms, catch-up), the others the sockets
        http_ports = servers.ports[:1] if args.split else servers.ports
        ws_ports = servers.ports[1:] if args.split else servers.ports
        catch_ports = (http_ports[0], ws_ports[0])
        phase = Phase(system, layer, n, len(ws_ports), split=args.split)
        self.world_no += 1
        world, targets, keys = confirm_http.build_world(self.world_no, EVENTS, args.units)
        if system == "ours" and "loop" not in layer.split("+"):
            command = [str(_lib.ROOT / ".venv/bin/python"), "manage.py", "realtime_relay"]
            ready = "event relay running"
        else:
            mode = "loop" if system == "ours" else "naive"
            command = [sys.executable, __file__, "_bench-relay", mode, "--tick", str(args.tick)]
            ready = f"{mode} relay running"
        # The board's "unit taken" events are written by the allocation log's sequencer, in
        # log order, not by the confirm (docs/REALTIME.md): it runs beside every relay.
        sequencer_command = [str(_lib.ROOT / ".venv/bin/python"), "manage.py", "ledger_sequencer"]
        with (
            Helper(
                f"sequencer-{system}-{layer}-{self.world_no}",
                sequencer_command,
                env,
                self.log_dir,
                "ledger sequencer running",
            ) as sequencer,
            Helper(
                f"relay-{system}-{layer}-{self.world_no}", command, env, self.log_dir, ready
            ) as relay,
        ):
            profiler = None
            try:
                ok, errors, phase.connect_s = self.pool.connect(
                    self.watcher_targets(n, ws_ports, f"/ws/broadcast/{world.round_id}/")
                )
                phase.retries = self.pool.retries
                if ok != n:
                    phase.problems.append(f"{n - ok} watchers failed to connect: {errors}")
                last = asyncio.run(offline_prepare(*catch_ports, world.round_id))
                pids = [
                    *[p.pid for p in servers.processes],
                    relay.process.pid,
                    sequencer.process.pid,
                ]
                profiler = Profiler(
                    args.py_spy,
                    self.log_dir / "profiles",
                    f"{system}-{layer}-{n}-{self.world_no}",
                    {
                        **{f"daphne{i}": p.pid for i, p in enumerate(servers.processes)},
                        "relay": relay.process.pid,
                        "sequencer": sequencer.process.pid,
                    },
                )
                cpu0 = [_lib.proc_cpu_seconds(p) for p in pids] + [redis_cpu()]
                self.pool.collect_start(EVENTS, args.burst_seconds + args.deadline)
                if args.fire == "http":
                    results, phase.busy = asyncio.run(
                        fire_burst(
                            world,
                            targets,
                            keys,
                            http_ports,
                            args.burst_seconds,
                            catch_ports,
                            last,
                        )
                    )
                else:
                    results = fire_service(world, targets, args.burst_seconds)
                    phase.busy = asyncio.run(catch_up_idle(*catch_ports, world.round_id, last))
                rows, frames, client_cpu = self.pool.collect_finish(
                    args.burst_seconds + args.deadline + 60
                )
                cpu1 = [_lib.proc_cpu_seconds(p) for p in pids] + [redis_cpu()]
                phase.profile = profiler.stop()
                phase.load = os.getloadavg()[0]
                settle([p.pid for p in servers.processes])  # "idle": the burst is over
                phase.idle = asyncio.run(catch_up_idle(*catch_ports, world.round_id, last))
                outbox = outbox_of(world.round_id)
                phase.problems += confirm_http.check(world, targets, results, args.units, EVENTS)
                if sorted(outbox) != list(range(1, EVENTS + 1)):
                    phase.problems.append(
                        f"outbox seqs {sorted(outbox)[:5]}…, expected 1..{EVENTS}"
                    )
                phase.problems += verify_frames(frames, world.round_id, outbox)
                for name, result in (("busy", phase.busy), ("idle", phase.idle)):
                    if not result.get("ok"):
                        phase.problems.append(f"catch-up ({name}) failed: {result.get('error')}")
                # Latency runs from the confirm's commit (the family's allocation), through
                # the sequencer's event, to the watcher: what the board's viewer waits.
                at = {seq: row["confirm_at"] for seq, row in outbox.items()}
                commit = {seq: row["confirmed"] for seq, row in outbox.items()}
                sequenced = {seq: row["committed"] for seq, row in outbox.items()}
                if None in (*at.values(), *commit.values(), *sequenced.values()):
                    phase.problems.append("an event has no confirm or commit stamp")
                    commit = sequenced = at
                phase.expected = n * EVENTS
                k = len(ws_ports)
                analyse(phase, rows, [commit] * k, [at] * k)
                if not phase.received:
                    phase.problems.append("no event reached any watcher")
                phase.confirm_p99 = _lib.percentile([r["ms"] for r in results], 99)
                answered = {targets[r["i"]]: r["done"] for r in results}
                phase.stages = stages(rows, outbox, at, commit, sequenced, answered)
                spent = [after - before for before, after in zip(cpu0, cpu1, strict=True)]
                servers_n = len(servers.processes)  # K, or K + 1 with --split (HTTP first)
                if args.split:
                    phase.cpu = {"daphne-http": spent[0], "daphne-ws": sum(spent[1:servers_n])}
                else:
                    phase.cpu = {"daphne": sum(spent[:servers_n])}
                phase.cpu.update(
                    {
                        "relay": spent[servers_n],
                        "sequencer": spent[servers_n + 1],
                        "redis": spent[-1],
                        "clients": client_cpu,
                    }
                )
                self.sample_data = [outbox[s]["data"] for s in sorted(outbox)]
            finally:
                if profiler is not None:
                    profiler.stop()
                self.pool.close_all()
        settle([p.pid for p in servers.processes])
        return phase

    def raw_phase(self, raw: list[Helper], ports: list[int], n: int) -> Phase:
        args = self.args
        phase = Phase("raw", "-", n, len(ports))
        try:
            ok, errors, phase.connect_s = self.pool.connect(
                self.watcher_targets(n, ports, "/ws/broadcast/0/")
            )
            phase.retries = self.pool.retries
            if ok != n:
                phase.problems.append(f"{n - ok} watchers failed to connect: {errors}")
            pids = [h.process.pid for h in raw]
            cpu0 = [_lib.proc_cpu_seconds(p) for p in pids]
            self.pool.collect_start(EVENTS, args.burst_seconds + args.deadline)
            data = self.sample_data or synthetic_event_data(EVENTS)
            built = asyncio.run(raw_burst(ports, "round.0", data, args.burst_seconds))
            rows, _, client_cpu = self.pool.collect_finish(args.burst_seconds + args.deadline + 60)
            cpu1 = [_lib.proc_cpu_seconds(p) for p in pids]
            phase.load = os.getloadavg()[0]
            phase.expected = n * EVENTS
            analyse(phase, rows, [{i + 1: t for i, t in enumerate(times)} for times in built])
            spread = max(max(times) - min(times) for times in built)
            phase.stages = f"50 events built and broadcast over {spread:.1f} s (per server)"
            phase.cpu = {"server": sum(cpu1) - sum(cpu0), "clients": client_cpu}
        finally:
            self.pool.close_all()
        settle([h.process.pid for h in raw])
        return phase


# ------------------------------------------------------------------------- report


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def print_table(phases: list[Phase], title: str) -> None:
    print(f"\n{title}")
    header = (
        f"{'system':<14}{'N':>6}{'K':>5}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'p99 at':>9}"
        f"{'deliv/s':>10}{'recv/expected':>17}{'frames':>8}{'catch-up busy/idle ms':>23}"
        f"{'confirm p99':>13}  cpu s"
    )
    print(header)
    print("-" * len(header))
    for p in phases:
        catch = (
            f"{fmt_ms(p.busy.get('ms', float('nan')))}/{fmt_ms(p.idle.get('ms', float('nan')))}"
            if p.system != "raw"
            else "-"
        )
        cpu = " ".join(f"{k} {v:.1f}" for k, v in p.cpu.items())
        print(
            f"{p.label:<14}{p.n:>6}{f'{p.workers}+1' if p.split else p.workers:>5}{fmt_ms(p.p50):>9}{fmt_ms(p.p99):>9}"
            f"{fmt_ms(p.max):>9}{fmt_ms(p.p99_at):>9}{p.rate:>10,.0f}{f'{p.received}/{p.expected}':>17}"
            f"{p.frames:>8.1f}{catch:>23}{fmt_ms(p.confirm_p99):>13}  {cpu}"
            + (f"  FAILED: {'; '.join(p.problems)}" if p.problems else "")
        )
        if p.stages:
            print(f"{'':<14}{p.stages}")
        print(
            f"{'':<14}{p.n} watchers connected in {p.connect_s:.1f} s ({p.retries} retried); "
            f"duplicates {p.dups}; load {p.load:.1f}"
            + (
                f"; catch-up socket: busy {p.busy.get('socket', '-')}, "
                f"idle {p.idle.get('socket', '-')}; catch-up reads: "
                f"busy {p.busy.get('reads', '-')}, idle {p.idle.get('reads', '-')}"
                if p.busy or p.idle
                else ""
            )
        )
        if p.profile:
            print(p.profile)
    raw = next((p for p in phases if p.system == "raw" and p.rate), None)
    for p in phases:
        if p.system == "raw" or raw is None or not p.rate:
            continue
        print(
            f"  {p.label}: deliveries/s {p.rate / raw.rate:.0%} of raw (target ≥ 50 %), "
            f"p99 {p.p99 / raw.p99:.1f}× raw's; p99 {'≤' if p.p99 <= 1000 else '>'} 1 s; "
            f"catch-up {fmt_ms(p.busy.get('ms', float('nan')))} ms busy / "
            f"{fmt_ms(p.idle.get('ms', float('nan')))} ms idle (target ≤ 2,000)"
        )


def print_summary(all_phases: list[Phase]) -> None:
    print("\nsummary (measured runs; median, min–max):")
    keys = sorted({(p.n, p.label) for p in all_phases}, key=lambda k: (k[0], k[1]))
    for n, label in keys:
        group = [p for p in all_phases if (p.n, p.label) == (n, label)]

        def s(values: list[float], fmt: str = "{:,.0f}") -> str:
            values = [v for v in values if v == v]
            if not values:
                return "-"
            median = fmt.format(statistics.median(values))
            return f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"

        print(
            f"  N={n:<5} {label:<14} p50 {s([p.p50 for p in group])} ms, "
            f"p99 {s([p.p99 for p in group])} ms, deliveries/s {s([p.rate for p in group])}, "
            f"lost {sum(p.expected - p.received for p in group)}, "
            f"catch-up busy {s([p.busy.get('ms', float('nan')) for p in group])} ms"
        )


# ---------------------------------------------------------------------------- main


LAYERS = tuple(
    f"{layer}{flags}"
    for layer in ("core", "pubsub")
    for flags in ("", "+fast", "+hub", "+loop", "+fast+loop", "+hub+loop")
)


def layer_env(base: dict, layer: str) -> dict:
    """The servers' and relays' environment: config.settings itself for "core", else this
    module as the settings module (the app's settings with the layer / patch switched)."""
    env = dict(base)
    if layer in ("core", "pubsub"):
        env["REALTIME_CHANNEL_LAYER"] = layer  # the app's own switch (config/settings.py)
    else:
        env["DJANGO_SETTINGS_MODULE"] = "bench.realtime_fanout"
        env[LAYER_ENV] = layer
    return env


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    fds = _lib.raise_fd_limit()
    migrate_s = _lib.bootstrap(DB_NAME)
    dropped = redis_forget(DB_NAME)
    install_commit_stamp()
    from bench.confirm_http import Servers

    base_env = {**os.environ}
    print(
        f"realtime_fanout: N={args.clients}, K={args.workers} daphne process(es)"
        + (" for the sockets + 1 for all HTTP (--split), " if args.split else ", ")
        + f"layers {args.layers}, systems {args.systems}, {args.client_procs} watcher process(es), "
        f"{EVENTS} confirms over {args.burst_seconds} s via {args.fire}, {args.runs} run(s); "
        f"fd limit {fds}; database {DB_NAME} migrated in {migrate_s:.1f} s; "
        f"{dropped} stale Redis keys dropped; load {os.getloadavg()[0]:.1f}"
    )
    log_dir = Path(tempfile.mkdtemp(prefix="anju-fanout-"))
    measured: list[Phase] = []
    failed = False
    pool = WatcherPool(args.client_procs)
    try:
        with ExitStack() as stack:
            servers = {}
            for layer in args.layers if {"ours", "naive"} & set(args.systems) else []:
                sub = log_dir / layer
                sub.mkdir()
                servers[layer] = stack.enter_context(
                    Servers(
                        args.workers + args.split,
                        layer_env(base_env, layer),
                        sub,
                        backlog=args.backlog,
                    )
                )
                print(f"daphne [{layer}] on ports {servers[layer].ports} (logs in {sub})")
            raw, raw_ports = [], []
            if "raw" in args.systems:
                for index in range(args.workers):
                    port = free_port()
                    raw.append(
                        stack.enter_context(
                            Helper(
                                f"raw-{index}",
                                [sys.executable, __file__, "_raw-server", "--port", str(port)],
                                base_env,
                                log_dir,
                                "raw server running",
                            )
                        )
                    )
                    wait_port(port)
                    raw_ports.append(port)
                print(f"raw websockets servers on ports {raw_ports}")
            bench = Bench(args, pool, log_dir)
            if not args.no_warmup:
                for layer, srv in servers.items():
                    warm = bench.daphne_phase(
                        "ours", layer, srv, layer_env(base_env, layer), min(50, args.clients[0])
                    )
                    print(
                        f"warm-up [{layer}]: p99 {fmt_ms(warm.p99)} ms"
                        + (f"; FAILED: {warm.problems}" if warm.problems else "")
                    )
                    failed |= bool(warm.problems)
            for n in args.clients:
                for run in range(1, args.runs + 1):
                    phases = []
                    for layer, srv in servers.items():
                        env = layer_env(base_env, layer)
                        for system in ("ours", "naive"):
                            if system == "naive" and layer not in args.naive_layers:
                                continue
                            if system in args.systems:
                                phases.append(bench.daphne_phase(system, layer, srv, env, n))
                    if raw:
                        phases.append(bench.raw_phase(raw, raw_ports, n))
                    print_table(
                        phases,
                        f"N={n} watchers, K={args.workers}, run {run}/{args.runs} "
                        f"(load {os.getloadavg()[0]:.1f})",
                    )
                    measured += phases
                    failed |= any(p.problems for p in phases)
            if failed:
                for layer, srv in servers.items():
                    print(f"--- daphne [{layer}] logs\n{srv.log_tail()}")
    finally:
        pool.quit()
    print_summary(measured)
    print(f"result: {'FAIL' if failed else 'ok'}; total {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_bench-relay":
        bench_relay_main(sys.argv[2], float(sys.argv[sys.argv.index("--tick") + 1]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_raw-server":
        raw_server_main(int(sys.argv[sys.argv.index("--port") + 1]))
    else:
        sys.exit(main())
