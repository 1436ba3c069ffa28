/* The account socket of a logged-in page (docs/REALTIME.md, "Sockets of a login").
 *
 * base.html loads this on every page of an applicant's login. It opens /ws/account/, which
 * follows nothing: the server closes it the moment the login ends —
 *   4409  another device logged in to the account: this page has been logged out;
 *   4411  logged out (in another tab of this browser).
 * On 4409 / 4411 the page shows why at the top of the screen, greys out and disables the
 * rest (inert) and stops its live updates: the event "anju:session-ended" tells live.js,
 * which also sends it when its own selection socket is closed so first. 4401 / 4403 at connect: not a device login, nothing to watch.
 * Any other close (network, server restart, 4503): reconnect with backoff; a socket of a
 * login that ended meanwhile is closed with the code at once. */

import { loginUrl } from "./lib/api.js";
import { el } from "./lib/dom.js";

const PATH = "/ws/account/";
const NOTICES = {
  4409: "您的账号已在其他设备登录，本页面已退出。如非本人操作，请立即联系工作人员。",
  4411: "您已退出登录，本页面已停止更新。",
};
const NOT_WATCHED = new Set([4401, 4403, 4404]);
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15_000];
const PONG_WITHIN_MS = 5000;

let ws = null;
let attempt = 0;
let ended = false;
let stopped = false;
let reconnectTimer = 0;
let pongTimer = 0;

function sessionEnded(reported) {
  if (ended) return;
  ended = true;
  const code = NOTICES[reported] ? reported : 4411;
  stop();
  const notice = el(
    "div",
    { class: "anju-session-ended", id: "session-ended", role: "alert", dataset: { code } },
    el("i", { class: "weui-icon-warn anju-session-ended__icon", "aria-hidden": "true" }),
    el("p", { class: "anju-session-ended__text", text: NOTICES[code] }),
    el("a", { class: "anju-session-ended__login", href: loginUrl(), text: "重新登录" }),
  );
  // The rest of the page stays readable but can no longer be used.
  for (const node of document.body.children) {
    if (node.tagName !== "SCRIPT") node.inert = true;
  }
  document.body.prepend(notice);
  document.body.classList.add("anju-body_session-ended");
  document.dispatchEvent(new CustomEvent("anju:session-ended", { detail: { code } }));
}

function stop() {
  stopped = true;
  clearTimeout(reconnectTimer);
  clearTimeout(pongTimer);
  const sock = ws;
  ws = null;
  if (sock) {
    try {
      sock.close();
    } catch {
      /* already closing */
    }
  }
}

function closed(code) {
  clearTimeout(pongTimer);
  if (stopped) return;
  if (NOTICES[code]) {
    sessionEnded(code);
    return;
  }
  if (NOT_WATCHED.has(code)) return;
  const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
  attempt += 1;
  reconnectTimer = setTimeout(open, wait * (0.7 + Math.random() * 0.6));
}

function open() {
  clearTimeout(reconnectTimer);
  if (stopped || ws) return;
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  let sock;
  try {
    sock = new WebSocket(`${scheme}//${window.location.host}${PATH}`);
  } catch {
    closed(0);
    return;
  }
  ws = sock;
  sock.addEventListener("message", (message) => {
    if (ws !== sock) return;
    let frame = null;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame && frame.type === "hello") attempt = 0;
    if (frame && frame.type === "pong") clearTimeout(pongTimer);
  });
  sock.addEventListener("close", (event) => {
    if (ws !== sock) return;
    ws = null;
    closed(event.code);
  });
}

/* The phone woke or came back online: a socket that looks open may be long dead (then it
 * missed the close), so check it answers; reconnect at once if it does not. */
function check() {
  if (stopped) return;
  if (!ws) {
    attempt = 0;
    open();
    return;
  }
  if (ws.readyState !== WebSocket.OPEN) return;
  const sock = ws;
  sock.send(JSON.stringify({ type: "ping", t0: Date.now() }));
  clearTimeout(pongTimer);
  pongTimer = setTimeout(() => {
    if (ws !== sock) return;
    ws = null;
    try {
      sock.close();
    } catch {
      /* already closing */
    }
    attempt = 0;
    open();
  }, PONG_WITHIN_MS);
}

document.addEventListener("anju:session-ended", (event) =>
  sessionEnded(event.detail && event.detail.code),
);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") check();
});
window.addEventListener("online", check);
window.addEventListener("pagehide", stop);
window.addEventListener("pageshow", (event) => {
  if (event.persisted && stopped && !ended) {
    stopped = false;
    attempt = 0;
    open();
  }
});

open();
