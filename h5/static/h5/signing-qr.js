/* 「签约协议」 on a desktop (guide 001): the QR code for the phone, and the phone's progress
 * live on the QR progress socket /ws/qr/<stream_token>/ (docs/REALTIME.md): 已扫码, then each
 * step the phone completes, then 已提交, without a refresh.
 *
 * The protocol: on `hello` the page fills in the stream over HTTP (…/streams/qr.<ticket>/
 * events/?after=<last>&token=…), drops events at or below `last`, fills in a gap (a frame
 * starting above last + 1, or a `heads` frame above last) the same way, and reconnects with
 * backoff. With no socket up for 4 s it polls every 3 s: the stream's events and the
 * agreement (GET …/agreements/<id>/, whose `step` says how far the phone got).
 *
 * The phone never logs in (opening the code starts its own signing session), so this page
 * stays logged in throughout. A code lives a bounded time (its `expires_at`): when it runs
 * out, or the socket is closed as expired (4410), the page issues a new one, keeping the
 * progress it has heard. The HTTP calls here are plain fetches, not Anju.api: a refusal
 * must not take the page away from the QR code. */
(() => {
  "use strict";

  const { api } = window.Anju;
  const { fmt, agreementId } = window.Anju.signing;

  const CONNECT_WITHIN_MS = 4000;
  const POLL_EVERY_MS = 3000;
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 15_000];
  const SUBMITTED = 7;
  const LIVE_LABELS = { connecting: "连接中", live: "实时", reconnecting: "重新连接中", polling: "定时刷新" };

  const id = agreementId();
  const $ = (sel) => document.getElementById(sel);
  const items = Array.from(document.querySelectorAll("#progress [data-step]"));

  const state = { scanned: false, step: 0, done: false };
  let stream = "";
  let token = "";
  let last = 0;
  let socket = null;
  let attempt = 0;
  let connectTimer = null;
  let pollTimer = null;
  let reconnectTimer = null;
  let queue = Promise.resolve();
  let sessionLost = false;
  let expiryTimer = null;

  /* ------------------------------------------------------------------ what it shows */

  function render() {
    const done = state.done || state.step >= SUBMITTED;
    let current = null;
    const scannedLabel = document.querySelector('#progress [data-step="scanned"] .anju-progress__label');
    if (scannedLabel) scannedLabel.textContent = state.scanned || state.step > 0 ? "已扫码" : "等待手机扫码";
    for (const item of items) {
      const key = item.dataset.step;
      const isDone =
        key === "scanned" ? state.scanned || state.step > 0 : Number(key) <= state.step || done;
      item.classList.toggle("anju-progress__item_done", isDone);
      item.classList.remove("anju-progress__item_current");
      item.removeAttribute("aria-current");
      if (!isDone && current === null) current = item;
    }
    if (current && !done) {
      current.classList.add("anju-progress__item_current");
      current.setAttribute("aria-current", "step");
    }
    $("progress-done").hidden = !done;
    $("qr-body").classList.toggle("anju-qr__body_done", done); // nothing left to scan
    if (done) {
      $("qr-deadline").textContent = "签约已提交，二维码已失效，无需再扫码";
      stop();
    }
  }

  function live(mode) {
    const badge = $("live-state");
    badge.className = `anju-live anju-live_${mode}`;
    $("live-label").textContent = LIVE_LABELS[mode];
  }

  function notice(text) {
    $("live-notice").textContent = text || "";
    $("live-notice").hidden = !text;
  }

  function apply(event) {
    if (event.type === "qr.scanned") state.scanned = true;
    else if (event.type === "qr.step") state.step = Math.max(state.step, Number(event.data.step) || 0);
    else if (event.type === "qr.done") state.done = true;
  }

  /* ------------------------------------------------------------------ HTTP */

  async function getJson(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
    if (response.status === 401 || response.status === 403) {
      sessionLost = true;
      throw new Error(`refused ${response.status}`);
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  function lostNotice() {
    notice("本机登录已失效，请重新登录后查看签约进度。手机端签约不受影响。");
  }

  /* Events after `last`, page by page; one task at a time. */
  function catchUp() {
    queue = queue
      .then(async () => {
        for (;;) {
          const data = await getJson(
            `/api/v1/streams/${encodeURIComponent(stream)}/events/?after=${last}&token=${encodeURIComponent(token)}`,
          );
          for (const event of data.events) {
            if (event.seq > last) {
              apply(event);
              last = event.seq;
            }
          }
          if (!data.more) break;
        }
        render();
      })
      .catch(() => {
        if (sessionLost) lostNotice();
      });
    return queue;
  }

  function onFrame(frame) {
    if (frame.type === "hello") {
      catchUp();
    } else if (frame.type === "events" && frame.stream === stream) {
      if (frame.from > last + 1) {
        catchUp();
        return;
      }
      queue = queue.then(() => {
        for (const event of frame.events) {
          if (event.seq > last) {
            apply(event);
            last = event.seq;
          }
        }
        render();
      });
    } else if (frame.type === "heads" && frame.streams && frame.streams[stream] > last) {
      catchUp();
    }
  }

  /* ------------------------------------------------------------------ socket and polling */

  async function poll() {
    catchUp();
    try {
      const agreement = await getJson(`/api/v1/signing/agreements/${id}/`);
      state.step = Math.max(state.step, agreement.step);
      if (agreement.status !== "pending" && agreement.step >= SUBMITTED) state.done = true;
      render();
    } catch {
      if (sessionLost) {
        lostNotice();
        clearInterval(pollTimer);
        pollTimer = null;
      }
    }
  }

  function startPolling() {
    if (pollTimer || state.done || sessionLost) return;
    live("polling");
    if (!sessionLost) notice("连接中断，已切换为定时刷新");
    poll();
    pollTimer = setInterval(poll, POLL_EVERY_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${window.location.host}/ws/qr/${encodeURIComponent(token)}/`);
    socket = ws;
    clearTimeout(connectTimer);
    connectTimer = setTimeout(startPolling, CONNECT_WITHIN_MS);
    ws.addEventListener("open", () => {
      attempt = 0;
      clearTimeout(connectTimer);
      stopPolling();
      live("live");
      if (!sessionLost) notice("");
    });
    ws.addEventListener("message", (message) => {
      let frame = null;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws || state.done) return;
      socket = null;
      if (event.code === 4410) {
        reissue(); // the code expired: a new one, the progress kept
        return;
      }
      if (event.code === 4403) {
        // The stream token belongs to a browser session that has ended: no socket will
        // open again with it; poll what can still be read.
        sessionLost = true;
        lostNotice();
        live("polling");
        return;
      }
      live("reconnecting");
      if (!pollTimer) {
        clearTimeout(connectTimer);
        connectTimer = setTimeout(startPolling, CONNECT_WITHIN_MS);
      }
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt += 1;
      reconnectTimer = setTimeout(connect, wait);
    });
  }

  /* Drop the code's timers, polling and socket (stop() and reissue() both start here). */
  function disconnect() {
    clearTimeout(expiryTimer);
    clearTimeout(connectTimer);
    clearTimeout(reconnectTimer);
    stopPolling();
    if (socket) {
      const ws = socket;
      socket = null;
      ws.close();
    }
  }

  function stop() {
    disconnect();
    notice("");
    $("live-state").hidden = true; // nothing more to hear
  }

  /* ------------------------------------------------------------------ start */

  /* server time − this computer's time, from the issuing answer's server_time_ms. */
  function clockSkew(issued) {
    return issued.server_time_ms ? issued.server_time_ms - Date.now() : 0;
  }

  /* The code ran out: drop its socket and show a new one. */
  function reissue() {
    if (state.done) return;
    disconnect();
    last = 0;
    $("qr-body").hidden = true;
    $("qr-loading").hidden = false;
    start().then(() => notice(""));
  }

  async function start() {
    let issued;
    try {
      issued = await api("POST", `/api/v1/signing/agreements/${id}/qr/`);
    } catch (failure) {
      if (failure.redirecting) return;
      $("qr-loading").hidden = true;
      $("qr-error-text").textContent =
        (failure.error && failure.error.message) || "二维码生成失败，请刷新页面重试";
      $("qr-error").hidden = false;
      live("polling");
      $("live-label").textContent = "未连接";
      return;
    }
    stream = issued.stream;
    token = issued.stream_token;
    $("qr-img").src = `data:image/png;base64,${issued.png_base64}`;
    $("qr-code").textContent = `${issued.short_code.slice(0, 4)} ${issued.short_code.slice(4)}`;
    $("qr-deadline").textContent = `二维码有效期至 ${fmt.dateTime(issued.expires_at)}，过期后将自动更新`;
    $("qr-loading").hidden = true;
    $("qr-body").hidden = false;
    clearTimeout(expiryTimer);
    const left = Date.parse(issued.expires_at) - (Date.now() + clockSkew(issued));
    expiryTimer = setTimeout(reissue, Math.max(left, 1000));
    live("connecting");
    connect();
    try {
      const agreement = await getJson(`/api/v1/signing/agreements/${id}/`);
      state.step = Math.max(state.step, agreement.step);
    } catch {
      // the socket's snapshot (hello → catch-up) and the polling cover it
    }
    render();
  }

  render();
  start();
})();
