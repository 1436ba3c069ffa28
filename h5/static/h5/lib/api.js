/* The JSON API: the CSRF cookie, the one error body, retries of a busy server, and a session
 * ended elsewhere sent to the login page. */

import { alert } from "./dialogs.js";
import { el } from "./dom.js";

export const LOGIN_URL = "/h5/login/";
const HOME_URL = "/h5/";

/* The login page, coming back to this page afterwards (as the server's h5/views.py
 * `_to_login`): `next` is the current path and query, unless it is the home page (where a
 * login goes anyway) or the login page itself; `reason` says why the session ended. */
export function loginUrl({ reason = "" } = {}) {
  const query = new URLSearchParams();
  const here = window.location.pathname + window.location.search;
  if (window.location.pathname !== HOME_URL && !window.location.pathname.startsWith(LOGIN_URL)) {
    query.set("next", here);
  }
  if (reason) query.set("reason", reason);
  const search = query.toString();
  return search ? `${LOGIN_URL}?${search}` : LOGIN_URL;
}

/* Where to go after the login or the privacy notice: `?next=` when it is a path on this site
 * (for example the signing QR code's /s/<token>), else the home page. Only "/…", never
 * "//host" or "/\\host" (which browsers read as another host), nor anything that resolves
 * elsewhere. */
export function nextUrl() {
  const next = new URLSearchParams(window.location.search).get("next") || "";
  if (!next.startsWith("/") || next.startsWith("//") || /[\\\s]/.test(next)) return HOME_URL;
  try {
    const url = new URL(next, window.location.origin);
    if (url.origin !== window.location.origin) return HOME_URL;
    return url.pathname + url.search + url.hash;
  } catch {
    return HOME_URL;
  }
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

export function cookie(name) {
  for (const part of document.cookie ? document.cookie.split(";") : []) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function csrfToken() {
  return cookie("csrftoken");
}

export function errorBody(code, message, extra = {}) {
  return { error: { code, message, fields: {} }, ...extra };
}

/* 503 `busy` (core/locking.py: a row lock not taken in time): the server wrote nothing, so
 * the same request is sent again, after Retry-After seconds (1 s when absent, at most 5 s),
 * up to BUSY_RETRIES times; a confirm also carries its idempotency key. */
const BUSY_RETRIES = 3;
const BUSY_WAIT_MAX_S = 5;
const BUSY_TEXT = "系统繁忙，正在重试…";
let busyRetrying = 0; // requests waiting to be sent again: the notice shows while > 0

/* The non-blocking WeUI loading toast 「系统繁忙，正在重试…」 (taps go through it). */
function busyNotice(delta) {
  busyRetrying = Math.max(0, busyRetrying + delta);
  let root = document.getElementById("anju-busy");
  if (!root && busyRetrying > 0) {
    root = el(
      "div",
      { id: "anju-busy", role: "status", "aria-live": "polite" },
      el(
        "div",
        { class: "weui-toast__wrp" },
        el(
          "div",
          { class: "weui-toast anju-busy-toast" },
          el("i", { class: "weui-loading weui-icon_toast", "aria-hidden": "true" }),
          el("p", { class: "weui-toast__content", text: BUSY_TEXT }),
        ),
      ),
    );
    document.body.append(root);
  }
  if (root) root.hidden = busyRetrying === 0;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* Call the API. Resolves with the parsed JSON (null for an empty body); rejects with the
 * API's error body {error: {code, message, fields}} plus `status` and `retryAfter`.
 * A 503 `busy` is sent again (see BUSY_RETRIES) before it is given up on.
 * A session ended by a login on another device goes straight to the login page. */
export async function api(method, url, body) {
  let retrying = false; // the notice stays up from the first busy until this call ends
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await request(method, url, body);
      } catch (failure) {
        const busy = failure.status === 503 && failure.error && failure.error.code === "busy";
        if (!busy || attempt >= BUSY_RETRIES) throw failure;
        if (!retrying) {
          retrying = true;
          busyNotice(+1);
        }
        await pause(Math.min(failure.retryAfter || 1, BUSY_WAIT_MAX_S) * 1000);
      }
    }
  } finally {
    if (retrying) busyNotice(-1);
  }
}

async function request(method, url, body) {
  method = method.toUpperCase();
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (!SAFE_METHODS.has(method)) headers["X-CSRFToken"] = csrfToken();

  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw errorBody("network_error", "网络连接失败，请检查网络后重试", { status: 0 });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;

  const failure =
    data && data.error ? data : errorBody(`http_${response.status}`, "系统繁忙，请稍后再试");
  failure.status = response.status;
  failure.retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10) || null;
  if (response.status === 401 && failure.error.code === "session_replaced") {
    failure.redirecting = true;
    window.location.replace(loginUrl({ reason: "replaced" }));
  }
  throw failure;
}

/* An API refusal: the login page for an ended session, else the server's Chinese message
 * in a dialog. */
export async function showFailure(failure, { title = "" } = {}) {
  if (failure && failure.redirecting) return;
  if (failure && failure.status === 401) {
    window.location.assign(loginUrl());
    return;
  }
  const message = (failure && failure.error && failure.error.message) || "系统繁忙，请稍后再试";
  await alert(message, { title });
}
