/* 安居 real time on the page: the protocol of docs/REALTIME.md, and the page's one clock.
 *
 *   import { connect, now } from "./lib/live.js"
 *   const live = connect({
 *     socket: "/ws/selection/3/",             // opened as ws:// or wss:// like the page
 *     snapshot: "/api/v1/selection/3/live/",  // GET; answers {heads, …, server_time_ms}
 *                                             // (or ({ first }) => url: the first may ask more)
 *     onSnapshot(data, { first, moved }) {},  // after each snapshot: connect, reconnect, poll
 *     onEvent(event, stream) {},              // each new event once, in seq order per stream
 *     onError(failure) {},                    // the snapshot was refused (401 / 403 / 404)
 *   });
 *   (A page with no snapshot URL, e.g. a QR ticket's progress with `token`, replays its
 *   streams' events from seq 0 instead, beside the socket too when it names `streams`.)
 *   now()                                     // the server's time in ms: every countdown
 *
 * The rules: the first snapshot is read beside the socket's opening, not after it, and its
 * heads set `last` for each stream; the socket's hello carries the heads it read after
 * joining its streams, so whatever fell between the two is above `last` there and filled in
 * like a `heads` frame. An event at or below `last` is dropped; a frame that starts above
 * `last + 1`, or heads above `last`, is filled in over HTTP first (`…/events/?after=last`,
 * again while `more`). A lost socket is reopened with
 * backoff and a fresh snapshot; when no socket is up for 4 s the snapshot is polled every
 * 3 s instead, until one is (and a socket that fails before any snapshot has one read at
 * once, as a poll). Everything that touches `last` runs one task at a time.
 *
 * The clock: `ping`/`pong` and every API answer with server_time_ms give a sample
 * (offset at the middle of the round trip); the offset of the fastest of the last few is
 * used. The title bar shows 实时 / 重新连接中 / 定时刷新; a banner warns when the phone's
 * clock is more than 2 s off. */
import { api } from "./api.js";
import { el } from "./dom.js";

const CONNECT_WITHIN_MS = 4000; // no socket up for this long: poll instead
const POLL_EVERY_MS = 3000;
const PING_EVERY_MS = 15_000;
const PONG_WITHIN_MS = 20_000; // a ping unanswered this long: the socket is dead
const WAKE_PONG_WITHIN_MS = 5000; // … this long after the phone wakes or comes online
const BACKOFF_MS = [1000, 2000, 4000, 8000, 10_000];
const CLOCK_SAMPLES = 6;
const DRIFT_WARN_MS = 2000;
const FATAL_CLOSE = new Set([4401, 4403, 4404]);
// The login ended (4409 another device logged in, 4411 logged out): stop for good; the
// account notice (account.js) says why. Sent and heard as "anju:session-ended".
const SESSION_ENDED_CLOSE = new Set([4409, 4411]);
const LABELS = {
  connecting: "连接中",
  live: "实时",
  reconnecting: "重新连接中",
  polling: "定时刷新",
  ended: "已退出",
};

/* ------------------------------------------------------------------ the clock */

export const clock = {
  offset: 0,
  rtt: Number.POSITIVE_INFINITY,
  synced: false,
  samples: [],
  /* A sample: the server said `serverMs` between the phone's `sentAt` and `receivedAt`. */
  sample(serverMs, sentAt, receivedAt) {
    if (typeof serverMs !== "number" || !(receivedAt >= sentAt)) return;
    this.samples.push({ offset: serverMs - (sentAt + receivedAt) / 2, rtt: receivedAt - sentAt });
    if (this.samples.length > CLOCK_SAMPLES) this.samples.shift();
    const best = this.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.offset = best.offset;
    this.rtt = best.rtt;
    this.synced = true;
    ui.drift(Math.abs(this.offset) > DRIFT_WARN_MS);
  },
  now() {
    return Date.now() + this.offset;
  },
};

/* GET through api() (a replaced session goes to the login page), feeding the clock. */
export async function getJson(url) {
  const sentAt = Date.now();
  const data = await api("GET", url);
  if (data && typeof data.server_time_ms === "number") {
    clock.sample(data.server_time_ms, sentAt, Date.now());
  }
  return data;
}

/* ---------------------------------------------------- the badge and the banners */

const ui = {
  badge: null,
  notices: null,
  banners: {},
  setup() {
    if (this.badge) return;
    const slot = document.querySelector(".anju-titlebar__side:last-child") || document.body;
    this.badge = el(
      "span",
      { class: "anju-live anju-live_connecting", id: "live-state", role: "status" },
      el("i", { class: "anju-live__dot", "aria-hidden": "true" }),
      el("span", { class: "anju-live__label", text: LABELS.connecting }),
    );
    slot.append(this.badge);
    this.notices = el("div", { class: "anju-live-notices", "aria-live": "polite" });
    const main = document.getElementById("main") || document.body;
    main.prepend(this.notices);
    this.drift(clock.synced && Math.abs(clock.offset) > DRIFT_WARN_MS);
  },
  remove() {
    if (this.badge) this.badge.remove();
    if (this.notices) this.notices.remove();
    this.badge = null;
    this.notices = null;
    this.banners = {};
  },
  state(state) {
    if (!this.badge) return;
    this.badge.className = `anju-live anju-live_${state}`;
    this.badge.dataset.state = state;
    this.badge.querySelector(".anju-live__label").textContent = LABELS[state];
    this.badge.setAttribute("aria-label", `连接状态：${LABELS[state]}`);
    this.banner("polling", state === "polling", "连接中断，已切换为定时刷新");
  },
  drift(on) {
    this.banner("drift", on, "您的手机时间与系统时间相差较大，请以页面倒计时为准");
  },
  banner(name, on, text) {
    if (!this.notices) return;
    let node = this.banners[name];
    if (on && !node) {
      node = el("p", { class: `anju-live-notice anju-live-notice_${name}`, id: `live-${name}`, text });
      this.notices.append(node);
      this.banners[name] = node;
    } else if (!on && node) {
      node.remove();
      delete this.banners[name];
    }
  },
};

/* ------------------------------------------------------------------ a connection */

export function connect(options) {
  const { socket: path, snapshot: snapshotUrl, token = "" } = options;
  let streams = options.streams || []; // without a snapshot URL: what to catch up from 0
  const snapshotAt = (first) =>
    typeof snapshotUrl === "function" ? snapshotUrl({ first }) : snapshotUrl;
  const onSnapshot = options.onSnapshot || (() => {});
  const onEvent = options.onEvent || (() => {});
  const onError = options.onError || (() => {});

  ui.setup();
  const last = {}; // stream → the last seq applied (from the snapshot's heads on)
  const seen = {}; // stream → the highest seq heard of (frames, heads, catch-up)
  let state = "connecting";
  let ws = null;
  let attempt = 0;
  let stopped = false;
  let snapshots = 0;
  let snapshotPending = false;
  let snapshotAgain = false;
  let hellos = 0;
  let pingSentAt = 0; // when the oldest unanswered ping went out; 0: none
  const timers = { reconnect: 0, fallback: 0, poll: 0, ping: 0, hello: 0 };

  let chain = Promise.resolve();
  /* One task at a time, in order: snapshots, frames and catch-ups all touch `last`. */
  const enqueue = (task) => {
    chain = chain.then(task).catch((error) => {
      if (!(error && error.error)) console.error("live:", error);
    });
    return chain;
  };

  function setState(next) {
    if (state === next) return;
    state = next;
    ui.state(next);
    if (options.onState) options.onState(next);
  }

  function note(stream, seq) {
    if (typeof seq === "number" && !(seen[stream] >= seq)) seen[stream] = seq;
  }

  /* ------------------------------------------------------------ applying events */

  async function apply(stream, event) {
    try {
      await onEvent(event, stream);
    } catch (error) {
      console.error("live: page failed on", event.type, error);
    }
    last[stream] = event.seq;
  }

  /* Fill `stream` in from `last` over HTTP. False when it could not (network, or events
   * the server no longer has: then a fresh snapshot is the way). */
  async function catchUp(stream) {
    for (let page = 0; page < 100; page++) {
      const after = last[stream];
      const query = new URLSearchParams({ after: String(after) });
      if (token) query.set("token", token);
      let data;
      try {
        data = await getJson(`/api/v1/streams/${encodeURIComponent(stream)}/events/?${query}`);
      } catch {
        return false;
      }
      note(stream, data.last_seq);
      for (const event of data.events) {
        if (event.seq <= last[stream]) continue;
        if (event.seq !== last[stream] + 1) {
          loadSnapshot();
          return false;
        }
        await apply(stream, event);
      }
      if (!data.more || last[stream] === after) {
        // The head is above what could be fetched (events no longer kept): start over.
        if (data.last_seq > last[stream]) loadSnapshot();
        return true;
      }
    }
    return true;
  }

  async function onEvents(frame) {
    const stream = frame.stream;
    note(stream, frame.to);
    if (!(stream in last)) return; // no snapshot yet: the snapshot covers it
    if (frame.from > last[stream] + 1 && !(await catchUp(stream))) return;
    for (const event of frame.events) {
      if (event.seq <= last[stream]) continue; // already have it
      if (event.seq !== last[stream] + 1) return; // a hole the catch-up could not fill
      await apply(stream, event);
    }
  }

  async function onHeads(frame) {
    for (const [stream, seq] of Object.entries(frame.streams || {})) {
      note(stream, seq);
      if (stream in last && seq > last[stream]) await catchUp(stream);
    }
  }

  /* ------------------------------------------------------------------ snapshots */

  function loadSnapshot() {
    if (stopped) return chain;
    if (snapshotPending) {
      snapshotAgain = true; // the one on its way may predate what asked for this one
      return chain;
    }
    snapshotPending = true;
    return enqueue(async () => {
      let data;
      try {
        data = snapshotUrl ? await getJson(snapshotAt(snapshots === 0)) : await replay();
      } catch (failure) {
        const status = failure && failure.status;
        if (status === 401 || status === 403 || status === 404) {
          stop();
          if (!failure.redirecting) onError(failure);
        }
        // Network or 5xx: polling tries again at its next turn; a live socket must not
        // wait for a reconnect (without a snapshot its frames cannot be applied).
        if (state === "live") setTimeout(loadSnapshot, POLL_EVERY_MS);
        return;
      } finally {
        snapshotPending = false;
        if (snapshotAgain) {
          snapshotAgain = false;
          loadSnapshot();
        }
      }
      const first = snapshots === 0;
      snapshots += 1;
      const heads = data.heads || {};
      const moved = new Set(
        Object.keys(heads).filter((stream) => first || last[stream] !== heads[stream]),
      );
      for (const [stream, seq] of Object.entries(heads)) {
        last[stream] = seq;
        note(stream, seq);
      }
      try {
        await onSnapshot(data, { first, moved });
      } catch (error) {
        console.error("live: page failed on the snapshot", error);
      }
      // Heard of something newer while the snapshot was on its way: fetch it.
      for (const stream of Object.keys(heads)) {
        if (seen[stream] > last[stream]) await catchUp(stream);
      }
    });
  }

  /* No snapshot URL (a QR progress page): every event of its streams from the start
   * (or from `last`) is the snapshot. */
  async function replay() {
    for (const stream of streams) {
      if (!(stream in last)) last[stream] = 0;
      if (!(await catchUp(stream))) {
        throw Object.assign(new Error("replay failed"), { status: 0 });
      }
    }
    return { heads: { ...last } };
  }

  function startPolling() {
    if (stopped || state === "live") return;
    setState("polling");
    if (!timers.poll) {
      timers.poll = setInterval(loadSnapshot, POLL_EVERY_MS);
      loadSnapshot();
    }
  }

  function stopPolling() {
    clearInterval(timers.poll);
    timers.poll = 0;
  }

  /* When no socket is up within CONNECT_WITHIN_MS from now, poll. */
  function armFallback() {
    if (!timers.fallback && !timers.poll) {
      timers.fallback = setTimeout(() => {
        timers.fallback = 0;
        startPolling();
      }, CONNECT_WITHIN_MS);
    }
  }

  /* -------------------------------------------------------------------- the socket */

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }

  /* A ping for the clock, and a check that the socket still answers: one looks open
   * long after a phone slept or changed networks. (Timed by unanswered pings, not by
   * silence: a background tab's timers may run once a minute.) */
  function ping(within = PONG_WITHIN_MS) {
    if (state !== "live") return;
    if (pingSentAt && Date.now() - pingSentAt > within) {
      drop(); // nothing comes back: start over
      return;
    }
    if (!pingSentAt) pingSentAt = Date.now();
    send({ type: "ping", t0: Date.now() });
  }

  function receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame && frame.type) {
      case "hello":
        if (Array.isArray(frame.streams) && !streams.length) streams = frame.streams;
        hello(frame.heads);
        break;
      case "events":
        enqueue(() => onEvents(frame));
        break;
      case "heads":
        enqueue(() => onHeads(frame));
        break;
      case "pong":
        pingSentAt = 0;
        if (typeof frame.t0 === "number") clock.sample(frame.server_time, frame.t0, Date.now());
        break;
      default: // "error": the socket stays up; nothing to do
    }
  }

  /* `heads`: each stream's head as the server read it after the socket joined. */
  function hello(heads) {
    const fillIn = () => heads && enqueue(() => onHeads({ streams: heads }));
    if (state === "live") {
      fillIn(); // the answer to a resync
      return;
    }
    clearTimeout(timers.hello);
    clearTimeout(timers.fallback);
    timers.fallback = 0;
    stopPolling();
    attempt = 0;
    setState("live");
    // Rule 1: the first snapshot was asked for beside the socket's opening; the heads fill
    // in what fell between (queued after it). Rule 3: a reconnect reads a fresh one, as does
    // a first hello with no snapshot taken or on its way (it failed, or a replay that had
    // to learn its streams from this hello).
    if (hellos > 0 || (snapshots === 0 && !snapshotPending)) loadSnapshot();
    hellos += 1;
    fillIn();
    clearInterval(timers.ping);
    ping(); // three quick ones for a good first offset, then one every 15 s
    setTimeout(ping, 1000);
    setTimeout(ping, 2000);
    timers.ping = setInterval(ping, PING_EVERY_MS);
  }

  function open() {
    clearTimeout(timers.reconnect);
    timers.reconnect = 0;
    if (stopped || ws) return;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    let sock;
    try {
      sock = new WebSocket(`${scheme}//${window.location.host}${path}`);
    } catch {
      closed(0);
      return;
    }
    ws = sock;
    pingSentAt = 0;
    // Open but no hello within the limit counts as a failure.
    timers.hello = setTimeout(() => {
      if (ws === sock && state !== "live") drop();
    }, CONNECT_WITHIN_MS);
    sock.addEventListener("message", (message) => {
      if (ws === sock) receive(message.data);
    });
    sock.addEventListener("close", (event) => {
      if (ws === sock) {
        ws = null;
        closed(event.code);
      }
    });
  }

  /* Give up on the current socket now (a dead one may take minutes to report close). */
  function drop() {
    const sock = ws;
    if (!sock) return;
    ws = null;
    try {
      sock.close();
    } catch {
      /* already closing */
    }
    closed(0);
  }

  function closed(code) {
    clearTimeout(timers.hello);
    clearInterval(timers.ping);
    timers.ping = 0;
    if (stopped) return;
    if (SESSION_ENDED_CLOSE.has(code)) {
      sessionEnded();
      document.dispatchEvent(new CustomEvent("anju:session-ended", { detail: { code } }));
      return;
    }
    if (state === "live") setState("reconnecting");
    if (FATAL_CLOSE.has(code)) {
      // Not logged in, replaced by another device, no seat: no use reopening. The polled
      // snapshot says which (api() sends a replaced session to the login page).
      startPolling();
      return;
    }
    // Nothing shown yet and the socket failed (a proxy that refuses websockets, say): read
    // the snapshot now, as a poll would, rather than leave the page empty until the fallback.
    if (snapshots === 0 && !snapshotPending) loadSnapshot();
    armFallback();
    const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt += 1;
    timers.reconnect = setTimeout(open, base * (0.7 + Math.random() * 0.6));
  }

  /* The phone woke or came back online: check a live socket soon, or try at once rather
   * than at the end of the backoff. */
  function retryNow() {
    if (stopped) return;
    if (state === "live") {
      ping();
      setTimeout(() => ping(WAKE_PONG_WITHIN_MS), WAKE_PONG_WITHIN_MS + 100);
    } else if (!ws) {
      attempt = 0;
      open();
    }
  }

  /* Back from the back-forward cache: start over as on load. */
  function resume(event) {
    if (!event.persisted || !stopped || state === "ended") return;
    stopped = false;
    attempt = 0;
    setState(state === "live" ? "reconnecting" : state);
    armFallback();
    open();
  }

  function stop() {
    stopped = true;
    stopPolling();
    for (const name of ["reconnect", "fallback", "hello"]) {
      clearTimeout(timers[name]);
      timers[name] = 0;
    }
    clearInterval(timers.ping);
    timers.ping = 0;
    const sock = ws;
    ws = null;
    if (sock) sock.close();
  }

  /* This page's login ended: no more updates, no polling, no reconnecting. */
  function sessionEnded() {
    if (stopped && state === "ended") return;
    stop();
    setState("ended");
  }

  document.addEventListener("anju:session-ended", sessionEnded);
  window.addEventListener("online", retryNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") retryNow();
  });
  window.addEventListener("pagehide", stop);
  window.addEventListener("pageshow", resume);

  ui.state(state);
  armFallback();
  // Rule 1: the first snapshot beside the socket's opening, not after its hello: on a slow
  // line (or over TLS, where a websocket is its own connection) the hello can come a round
  // trip after the page's own first read. A replay needs its streams: given, or the hello's.
  if (snapshotUrl || streams.length) loadSnapshot();
  open();

  return {
    get state() {
      return state;
    },
    last,
    /* Read the snapshot again now (a 「刷新」 button). */
    refresh: loadSnapshot,
    stop,
    /* The page will not use this connection after all (its own first read sent it
     * elsewhere or to a notice): stop, and take the badge and banners away. */
    abandon() {
      stop();
      ui.remove();
    },
  };
}

/* The server's time in ms: every countdown counts against this. */
export function now() {
  return clock.now();
}
