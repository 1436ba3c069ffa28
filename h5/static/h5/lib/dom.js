/* DOM helpers every page uses: build elements, label/value rows, busy buttons, the resend
 * countdown, form errors, the text toast. Text is always set as text, never parsed as HTML. */

// iOS Safari shows :active (WeUI's pressed buttons) only where a touchstart listener exists;
// once <body ontouchstart>, an inline handler the Content-Security-Policy forbids.
document.addEventListener("touchstart", () => {}, { passive: true });

export const $ = (id) => document.getElementById(id);

/* el("p", {class: "x", text: "…"}, child, …) */
export function el(tag, attrs = {}, ...children) {
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

/* The attributes of a code the applicant reads out or types (验证码, 核验码, 识别码): the
 * browser's or WeChat's translation leaves it alone, and it is not read as a word. */
export const CODE = { translate: "no" };

/* A short Chinese label whose lines may break only between its words (with CSS
 * `word-break: keep-all`): the text with <wbr> between the words Intl.Segmenter finds, a
 * one-character word kept with the next (人脸|识别, 待审核). At the phone's largest text size
 * 「完善承租信息」 then reads 完善 / 承租 / 信息, never 完善承 / 租信息. */
// Absent before Chrome 87 / Safari 14.1: the label then breaks between its pairs of characters.
const WORDS = Intl.Segmenter ? new Intl.Segmenter("zh", { granularity: "word" }) : null;

export function words(text) {
  const segments = WORDS ? [...WORDS.segment(text)].map((s) => s.segment) : [...text];
  const parts = [];
  let pending = "";
  for (const segment of segments) {
    pending += segment;
    if (pending.length > 1) {
      parts.push(pending);
      pending = "";
    }
  }
  if (pending && parts.length) parts[parts.length - 1] += pending;
  else if (pending) parts.push(pending);
  return parts.flatMap((part, index) => (index ? [el("wbr"), part] : [part]));
}

/* One label/value line of a WeUI form preview (a <dl>'s item). */
export function row(label, value, attrs = {}) {
  return el(
    "div",
    { class: "weui-form-preview__item" },
    el("dt", { class: "weui-form-preview__label", text: label }),
    el("dd", { class: "weui-form-preview__value", text: value, ...attrs }),
  );
}

/* Text with line breaks as paragraphs; the first line as the heading when asked. */
export function paragraphs(text, { heading = false } = {}) {
  const lines = String(text || "")
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  const nodes = [];
  if (heading && lines.length) nodes.push(el("h2", { text: lines.shift() }));
  for (const line of lines) nodes.push(el("p", { text: line }));
  return nodes;
}

/* Mark a button busy (disabled, optional label) or give it back its own label. */
export function setBusy(button, on, busyLabel) {
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

/* Disable `button` for `seconds`, showing 「重新获取(59s)」; then re-enable it with
 * `doneLabel`. Counts against a deadline, so a throttled background tab stays right.
 * Returns a function that stops the countdown early. */
export function countdown(button, seconds, { doneLabel = "重新获取", format } = {}) {
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

/* Form errors: the message under the form, field messages next to their fields
 * ([data-error-for=name] inside the cell [data-field=name]). */
export function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) {
    slot.textContent = "";
    slot.hidden = true;
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

export function showErrors(form, failure) {
  clearErrors(form);
  const error = (failure && failure.error) || { message: "系统繁忙，请稍后再试", fields: {} };
  const unplaced = [];
  const placed = [];
  for (const [name, messages] of Object.entries(error.fields || {})) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (!slot) {
      unplaced.push(...messages);
      continue;
    }
    placed.push(...messages);
    slot.textContent = messages.join("；");
    slot.hidden = false;
    const cell = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (cell) {
      cell.classList.add("weui-cell_warn");
      const input = cell.querySelector("input, textarea, select");
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }
  /* The form's summary: the error's message and what has no field of its own, not a
   * message already shown beside its field (「请输入身份证号码」 twice on a phone). */
  const summary = form.querySelector("#form-error");
  if (summary) {
    const lines = [error.message, ...unplaced].filter(
      (m, i, all) => m && !placed.includes(m) && all.indexOf(m) === i,
    );
    summary.textContent = lines.join("；");
    summary.hidden = !lines.length;
  }
  const firstBad = form.querySelector('[aria-invalid="true"]');
  if (firstBad) firstBad.focus();
}

let toastTimer = null;

/* A WeUI text toast that goes away by itself. */
export function toast(text, { ms = 1500 } = {}) {
  let root = $("anju-toast");
  if (!root) {
    root = el(
      "div",
      { id: "anju-toast", role: "status", "aria-live": "polite" },
      el(
        "div",
        { class: "weui-toast__wrp" },
        el("div", { class: "weui-toast weui-toast_text" }, el("p", { class: "weui-toast__content" })),
      ),
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
