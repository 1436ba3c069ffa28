/* A desktop's QR code for the phone, and the phone's progress on it, live (guide 000 and
 * 001): the agreement's 「签约协议」 page and the lease page's 人脸识别 / 签订合同 / 押金缴纳
 * stages show the same thing.
 *
 *   import { qrProgress } from "./lib/qr-progress.js"
 *   const qr = qrProgress({
 *     issue: () => api("POST", ".../qr/"),  // a new ticket: {png_base64, short_code,
 *                                           //  expires_at, stream, stream_token, server_time_ms}
 *     items: [["scanned", "已扫码"], [5, "阅读并确认合同"], ["done", "押金缴纳成功"]],
 *                         // omitted: the list's own <li data-step [data-label]> (server-rendered)
 *     from: 4,                              // the stage's first step: a step above it = scanned
 *     step: 4,                              // progress made before this code (agreement.step)
 *     finished: (p) => p.step >= 7,         // the phone is through (default: p.done)
 *     onProgress(progress, { snapshot, polling }) {},  // after each event and each snapshot
 *     onIssueFailure(failure) {},           // the ticket refused; return true when handled
 *   });
 *   qr.progress                             // {scanned, step, done}: what the phone did
 *   qr.update({ step })                     // progress learnt elsewhere (a re-read agreement)
 *   qr.renew()                              // a new code, the progress kept (「重新获取二维码」)
 *   qr.stop()                               // no more socket, polling, timers or DOM changes
 *
 * The page's markup (both templates): #qr-loading, #qr-body with #qr-img, #qr-code and
 * #qr-deadline, #qr-error with #qr-error-text, and the <ol id="progress"> it fills: one
 * <li data-step> per item, done ones .anju-progress__item_done, the next one
 * .anju-progress__item_current with aria-current="step"; 「等待手机扫码」 until the phone
 * has scanned. Once `finished`, every item is done and none is current.
 *
 * The progress comes from the ticket's stream (qr.scanned, qr.step {step}, qr.done) through
 * lib/live.js with the ticket's stream token: its events from the start, then the socket
 * /ws/qr/<token>/, gap fills, reconnects, polling when no socket is up; its badge
 * (实时 / 重新连接中 / 定时刷新) shows while a code is up. The token reads the stream without a
 * login, so the phone may log in (ending this browser's session) and the page still hears it.
 * A code lives until its `expires_at` (the server's clock): then, or when the stream refuses
 * the token, a new one is issued and shown, keeping the progress heard. */

import { connect } from "./live.js";
import { dateTime } from "./format.js";
import { el } from "./dom.js";

const WAITING = "等待手机扫码";
const ISSUE_FAILED = "二维码生成失败，请重试";

export function qrProgress(options) {
  const {
    issue,
    from = 0,
    finished = (p) => p.done,
    onProgress = () => {},
    onIssueFailure = () => false,
  } = options;
  const $ = (id) => document.getElementById(id);
  const list = $("progress");
  const progress = { scanned: false, step: options.step || 0, done: false };
  let live = null;
  let expiry = 0;
  let stopped = false;
  let issuing = false;

  /* ------------------------------------------------------------ the progress list */

  const items = (
    options.items ||
    Array.from(list.querySelectorAll("li[data-step]"), (li) => [
      li.dataset.step,
      li.dataset.label || li.textContent.trim(),
    ])
  ).map(([key, label]) => {
    const step = key === "scanned" || key === "done" ? key : Number(key);
    const text = el("span", { class: "anju-progress__label", text: label });
    const node = el(
      "li",
      { class: "anju-progress__item", dataset: { step: String(key) } },
      el("span", { class: "anju-progress__dot", "aria-hidden": "true" }),
      text,
    );
    return { step, label, node, text };
  });
  list.replaceChildren(...items.map((item) => item.node));

  const scanned = () => progress.scanned || progress.done || progress.step > from;

  function render() {
    const through = finished(progress);
    let current = null;
    for (const item of items) {
      const done =
        through ||
        (item.step === "scanned" ? scanned() : item.step === "done" ? progress.done : progress.step >= item.step);
      const text = item.step === "scanned" && !done ? WAITING : item.label;
      if (item.text.textContent !== text) item.text.textContent = text;
      item.node.classList.toggle("anju-progress__item_done", done);
      item.node.classList.remove("anju-progress__item_current");
      item.node.removeAttribute("aria-current");
      if (!done && current === null) current = item.node;
    }
    if (current) {
      current.classList.add("anju-progress__item_current");
      current.setAttribute("aria-current", "step");
    }
  }

  function apply(event) {
    if (event.type === "qr.scanned") progress.scanned = true;
    else if (event.type === "qr.step") progress.step = Math.max(progress.step, Number(event.data.step) || 0);
    else if (event.type === "qr.done") progress.done = true;
  }

  function changed(info) {
    render();
    onProgress(progress, info);
  }

  /* ------------------------------------------------------------ the live badge */

  function badge(shown) {
    const node = $("live-state");
    if (node) node.hidden = !shown;
    const notices = document.querySelector(".anju-live-notices");
    if (notices) notices.hidden = !shown;
  }

  function disconnect() {
    clearTimeout(expiry);
    expiry = 0;
    if (live) {
      live.stop();
      live = null;
    }
    badge(false);
  }

  /* ------------------------------------------------------------ the code */

  async function show() {
    if (stopped || issuing) return;
    issuing = true;
    disconnect();
    $("qr-body").hidden = true;
    $("qr-error").hidden = true;
    $("qr-loading").hidden = false;
    let ticket;
    try {
      ticket = await issue();
    } catch (failure) {
      if (stopped || failure.redirecting) return;
      $("qr-loading").hidden = true;
      if (onIssueFailure(failure)) return;
      $("qr-error-text").textContent = (failure.error && failure.error.message) || ISSUE_FAILED;
      $("qr-error").hidden = false;
      return;
    } finally {
      issuing = false;
    }
    if (stopped) return;
    $("qr-img").src = `data:image/png;base64,${ticket.png_base64}`;
    $("qr-code").textContent = `${ticket.short_code.slice(0, 4)} ${ticket.short_code.slice(4)}`;
    $("qr-deadline").textContent = `二维码有效期至 ${dateTime(ticket.expires_at)}，过期后将自动更新`;
    $("qr-loading").hidden = true;
    $("qr-body").hidden = false;

    // The code's time left as the server counts it, whatever this computer's clock says.
    const left = Date.parse(ticket.expires_at) - (ticket.server_time_ms || Date.now());
    expiry = setTimeout(show, Math.max(left, 1000));

    const connection = connect({
      socket: `/ws/qr/${encodeURIComponent(ticket.stream_token)}/`,
      token: ticket.stream_token,
      streams: [ticket.stream],
      onEvent(event) {
        if (live !== connection) return;
        apply(event);
        changed({ snapshot: false, polling: connection.state === "polling" });
      },
      onSnapshot() {
        if (live !== connection) return;
        changed({ snapshot: true, polling: connection.state === "polling" });
      },
      onError() {
        // The stream refused the token (the code expired): a new code.
        if (live === connection) show();
      },
    });
    live = connection;
    badge(true);
  }

  render();
  show();

  return {
    progress,
    update({ step, scanned: seen, done } = {}) {
      if (typeof step === "number") progress.step = Math.max(progress.step, step);
      if (seen) progress.scanned = true;
      if (done) progress.done = true;
      if (!stopped) render();
    },
    renew() {
      if (!stopped) show();
    },
    stop() {
      stopped = true;
      disconnect();
    },
    get state() {
      return stopped ? "stopped" : live ? live.state : "issuing";
    },
  };
}

// Back from the back-forward cache, a stopped connection of an old code would come back to
// life (lib/live.js resumes on pageshow) and the code shown may have expired: start over.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});
