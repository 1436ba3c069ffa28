/* Anju H5 shared helpers: the JSON API, the CSRF cookie, form errors, the resend countdown,
 * the one time format.
 * Plain modern JS, no build step. Exposed as window.Anju. */
(() => {
  "use strict";

  // iOS Safari shows :active (WeUI's pressed buttons) only where a touchstart listener
  // exists; once <body ontouchstart>, an inline handler the Content-Security-Policy forbids.
  document.addEventListener("touchstart", () => {}, { passive: true });

  const LOGIN_URL = "/h5/login/";
  const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

  function cookie(name) {
    for (const part of document.cookie ? document.cookie.split(";") : []) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  function csrfToken() {
    return cookie("csrftoken");
  }

  function errorBody(code, message, extra = {}) {
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
  async function api(method, url, body) {
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
      window.location.replace(`${LOGIN_URL}?reason=replaced`);
    }
    throw failure;
  }

  /* Form errors: the message under the form, field messages next to their fields
   * ([data-error-for=name] inside the cell [data-field=name]). */
  function clearErrors(form) {
    for (const el of form.querySelectorAll("[data-error-for]")) {
      el.textContent = "";
      el.hidden = true;
    }
    for (const cell of form.querySelectorAll("[data-field]")) {
      cell.classList.remove("weui-cell_warn");
      const input = cell.querySelector("input, textarea, select");
      if (input) input.removeAttribute("aria-invalid");
    }
    const summary = form.querySelector("#form-error");
    if (summary) {
      summary.textContent = "";
      summary.hidden = true;
    }
  }

  function showErrors(form, failure) {
    clearErrors(form);
    const error = (failure && failure.error) || errorBody("error", "系统繁忙，请稍后再试").error;
    const unplaced = [];
    for (const [name, messages] of Object.entries(error.fields || {})) {
      const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      if (!slot) {
        unplaced.push(...messages);
        continue;
      }
      slot.textContent = messages.join("；");
      slot.hidden = false;
      const cell = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
      if (cell) {
        cell.classList.add("weui-cell_warn");
        const input = cell.querySelector("input, textarea, select");
        if (input) input.setAttribute("aria-invalid", "true");
      }
    }
    const summary = form.querySelector("#form-error");
    if (summary) {
      const extra = unplaced.filter((m) => m !== error.message);
      summary.textContent = [error.message, ...extra].join("；");
      summary.hidden = false;
    }
    const firstBad = form.querySelector('[aria-invalid="true"]');
    if (firstBad) firstBad.focus();
  }

  /* Disable `button` for `seconds`, showing 「重新获取(59s)」; then re-enable it with
   * `doneLabel`. Counts against a deadline, so a throttled background tab stays right.
   * Returns a function that stops the countdown early. */
  function countdown(button, seconds, { doneLabel = "重新获取", format } = {}) {
    const label = format || ((left) => `重新获取(${left}s)`);
    const deadline = Date.now() + seconds * 1000;
    let timer = null;
    const finish = () => {
      clearInterval(timer);
      button.disabled = false;
      button.classList.remove("weui-btn_disabled");
      button.textContent = doneLabel;
    };
    const tick = () => {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) {
        finish();
        return;
      }
      button.textContent = label(left);
    };
    button.disabled = true;
    button.classList.add("weui-btn_disabled");
    tick();
    timer = setInterval(tick, 250);
    return finish;
  }

  /* Mark a button busy (disabled, optional label) or give it back its own label. */
  function setBusy(button, on, busyLabel) {
    if (on) {
      button.dataset.label = button.textContent;
      if (busyLabel) button.textContent = busyLabel;
      button.setAttribute("aria-busy", "true");
    } else {
      if (button.dataset.label) button.textContent = button.dataset.label;
      button.removeAttribute("aria-busy");
    }
    button.disabled = on;
    button.classList.toggle("weui-btn_disabled", on);
  }

  /* Build an element: el("p", {class: "x", text: "…"}, child, …). Text is always set as
   * text, never parsed as HTML. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  let dialogCount = 0;

  /* A WeUI dialog. `body` is text or a node; `buttons` [{label, value, kind}] with kind
   * default | primary | warn. Resolves with the tapped button's value. */
  function dialog({ title = "", body = "", buttons = [{ label: "确定", value: true }] } = {}) {
    return new Promise((resolve) => {
      const id = `anju-dialog-${++dialogCount}`;
      const previous = document.activeElement;
      const close = (value) => {
        root.remove();
        document.removeEventListener("keydown", onKey);
        if (previous && previous.isConnected && typeof previous.focus === "function") {
          previous.focus({ preventScroll: true });
        }
        resolve(value);
      };
      const onKey = (event) => {
        if (event.key === "Escape") close(buttons.length > 1 ? buttons[0].value : true);
      };
      const buttonNodes = buttons.map((button) =>
        el("button", {
          type: "button",
          class: `weui-dialog__btn weui-dialog__btn_${button.kind || "primary"} anju-dialog__btn`,
          text: button.label,
          onclick: () => close(button.value),
        }),
      );
      const root = el(
        "div",
        {
          class: "anju-dialog",
          role: "dialog",
          "aria-modal": "true",
          "aria-labelledby": title ? `${id}-title` : `${id}-body`,
          "aria-describedby": title ? `${id}-body` : null,
        },
        el("div", { class: "weui-mask" }),
        el(
          "div",
          { class: "weui-dialog" },
          title
            ? el(
                "div",
                { class: "weui-dialog__hd" },
                el("strong", { class: "weui-dialog__title", id: `${id}-title`, text: title }),
              )
            : null,
          el("div", { class: "weui-dialog__bd anju-dialog__bd", id: `${id}-body` }, body),
          el("div", { class: "weui-dialog__ft" }, buttonNodes),
        ),
      );
      document.body.append(root);
      document.addEventListener("keydown", onKey);
      buttonNodes[buttonNodes.length - 1].focus({ preventScroll: true });
    });
  }

  /* The one-button dialog for a refusal or a notice. */
  function alert(message, { title = "", label = "知道了" } = {}) {
    return dialog({ title, body: message, buttons: [{ label, value: true }] });
  }

  let toastTimer = null;

  /* A WeUI text toast that goes away by itself. */
  function toast(text, { ms = 1500 } = {}) {
    let root = document.getElementById("anju-toast");
    if (!root) {
      root = el(
        "div",
        { id: "anju-toast", role: "status", "aria-live": "polite" },
        el("div", { class: "weui-toast__wrp" }, el("div", { class: "weui-toast weui-toast_text" },
          el("p", { class: "weui-toast__content" }))),
      );
      document.body.append(root);
    }
    root.querySelector(".weui-toast__content").textContent = text;
    root.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      root.hidden = true;
    }, ms);
  }

  /* Times as applicants read them, the same on every page, in SMS texts and in PDFs (core/fmt.py
   * `datetime_zh`): 「2026年12月5日 01:08」 (with `seconds`, 「… 01:08:09」), always in the
   * server's zone whatever the device's. */
  const TZ = "Asia/Shanghai";
  const fmt = {
    TZ,
    dateTime(value, { seconds = false } = {}) {
      if (value === null || value === undefined || value === "") return "";
      const date = new Date(typeof value === "number" ? value : Date.parse(value));
      if (Number.isNaN(date.getTime())) return "";
      const p = {};
      for (const { type, value: v } of new Intl.DateTimeFormat("zh-CN", {
        timeZone: TZ,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      }).formatToParts(date)) {
        p[type] = v;
      }
      const two = (v) => String(v).padStart(2, "0");
      const hm = `${two(p.hour)}:${two(p.minute)}`;
      const clock = seconds ? `${hm}:${two(p.second)}` : hm;
      return `${p.year}年${p.month}月${p.day}日 ${clock}`;
    },
  };

  window.Anju = {
    fmt,
    api,
    cookie,
    csrfToken,
    clearErrors,
    showErrors,
    countdown,
    setBusy,
    el,
    dialog,
    alert,
    toast,
    LOGIN_URL,
  };
})();
