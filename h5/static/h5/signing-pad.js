/* 手写签名: one box per character of the signer's name, written one character at a time in a
 * full-screen box (signature_pad, served from node_modules as /static/vendor/signature_pad/).
 *
 *   import { boxes } from "./signing-pad.js"
 *   const pad = boxes({
 *     list,            // the <ul> the small boxes go in
 *     chars: "王小明", // one box each
 *     drawn: [0],      // boxes the server already has (this attempt)
 *     save(index, { strokes, width, height }),  // PUT the character; rejects with the API error
 *     onChange(allDrawn),
 *     onFailure(failure),  // a refusal that is not about the ink (session, step): the page's
 *   });
 *
 * Every stroke is kept as its points {x, y, t, p}: CSS pixels inside the box, the time in ms
 * and the pressure, straight from signature_pad's toData(). When the box changes size
 * (rotation, resize) the ink is scaled to the new box and redrawn with fromData(), so
 * nothing written is lost and the points stay in the box the server is told about. Whether
 * the ink is good enough (inside the box, a plausible character) is the server's call; the
 * page shows its reason. */

import { el } from "./lib/dom.js";

const $ = (id) => document.getElementById(id);
const BOX_MIN = 120; // CSS px; the server accepts 80..1200
const BOX_MAX = 600;
const RESERVED_HEIGHT = 220; // title, tip, error line and buttons around the box

const round = (value, places) => {
  const f = 10 ** places;
  return Math.round(value * f) / f;
};

export function boxes({ list, chars, drawn = [], save, onChange, onFailure }) {
  let letters = Array.from(chars);
  const pad = $("pad");
  const canvas = $("pad-canvas");
  const error = $("pad-error");
  const okButton = $("pad-ok");
  let done = new Set(drawn);
  const ink = new Map(); // index → data URL of what was saved from this page
  let signature = null;
  let side = 0;
  let current = null;
  let busy = false;

  /* ------------------------------------------------------------- the small boxes */

  function renderList() {
    list.replaceChildren(
      ...letters.map((char, index) => {
        const isDone = done.has(index);
        const image = ink.get(index);
        return el(
          "li",
          { class: "anju-sigbox" },
          el(
            "button",
            {
              type: "button",
              class: [
                "anju-sigbox__btn",
                isDone ? "anju-sigbox__btn_done" : "",
                current === index ? "anju-sigbox__btn_current" : "",
              ].join(" "),
              "aria-label": `第${index + 1}字「${char}」${isDone ? "，已书写，点击重新书写" : "，点击书写"}`,
              dataset: { index: String(index), drawn: isDone ? "1" : "0" },
              onclick: () => open(index),
            },
            image
              ? el("img", { class: "anju-sigbox__ink", src: image, alt: "" })
              : el("span", {
                  class: isDone ? "anju-sigbox__saved" : "anju-sigbox__empty",
                  text: isDone ? "已书写" : "点击书写",
                }),
          ),
          el("span", { class: "anju-sigbox__char", text: char }),
        );
      }),
    );
    onChange(letters.every((_, index) => done.has(index)));
  }

  /* ------------------------------------------------------------- the drawing box */

  function wantedSide() {
    const width = window.innerWidth - 32;
    const height = window.innerHeight - RESERVED_HEIGHT;
    return Math.round(Math.max(BOX_MIN, Math.min(width, height, BOX_MAX)));
  }

  /* Size the canvas for the screen; keep (and scale) the ink already written. */
  function fit() {
    const next = wantedSide();
    const ratio = Math.max(window.devicePixelRatio || 1, 1);
    if (signature && next === side && canvas.width === Math.round(next * ratio)) return;
    const scale = side ? next / side : 1;
    const data = signature
      ? signature.toData().map((group) => ({
          ...group,
          points: group.points.map((point) => ({ ...point, x: point.x * scale, y: point.y * scale })),
        }))
      : [];
    canvas.style.width = `${next}px`;
    canvas.style.height = `${next}px`;
    canvas.width = Math.round(next * ratio);
    canvas.height = Math.round(next * ratio);
    canvas.getContext("2d").scale(ratio, ratio);
    side = next;
    if (!signature) {
      signature = new window.SignaturePad(canvas, {
        minWidth: 1.5,
        maxWidth: 4.5,
        penColor: "#000",
      });
      signature.addEventListener("beginStroke", () => {
        error.textContent = "";
      });
    }
    signature.clear();
    if (data.length) signature.fromData(data);
  }

  function strokes() {
    return signature.toData().map((group) =>
      group.points.map((point) => ({
        x: round(point.x, 2),
        y: round(point.y, 2),
        t: Math.round(point.time),
        p: round(typeof point.pressure === "number" ? point.pressure : 0.5, 3),
      })),
    );
  }

  function open(index) {
    current = index;
    $("pad-title").textContent = `书写「${letters[index]}」（第${index + 1}字，共${letters.length}字）`;
    $("pad-tip").textContent = done.has(index)
      ? "重新书写将替换已写的字，请在框内书写，一次仅限一字"
      : "请在框内书写，一次仅限一字";
    error.textContent = "";
    pad.hidden = false;
    document.body.classList.add("anju-noscroll");
    fit();
    signature.clear();
    renderList();
  }

  function close() {
    pad.hidden = true;
    document.body.classList.remove("anju-noscroll");
    if (signature) signature.clear();
    current = null;
    renderList();
  }

  async function confirm() {
    if (busy || current === null) return;
    if (signature.isEmpty()) {
      // Nothing written: said here, as the server would say it, without a refused request.
      error.textContent = "请在签字框内书写";
      return;
    }
    busy = true;
    okButton.disabled = true;
    okButton.classList.add("weui-btn_disabled");
    const index = current;
    try {
      await save(index, { strokes: strokes(), width: side, height: side });
      done.add(index);
      ink.set(index, signature.toDataURL("image/png"));
      const next = letters.findIndex((_, i) => i > index && !done.has(i));
      const first = letters.findIndex((_, i) => !done.has(i));
      const following = next >= 0 ? next : first;
      if (following >= 0) open(following);
      else close();
    } catch (failure) {
      if (failure && failure.status === 400) {
        // The server's reason, e.g. 「笔迹超出签字框，请点击「清除」后在框内重新书写」.
        error.textContent = failure.error.message;
      } else {
        close();
        onFailure(failure);
      }
    } finally {
      busy = false;
      okButton.disabled = false;
      okButton.classList.remove("weui-btn_disabled");
    }
  }

  $("pad-clear").addEventListener("click", () => {
    if (signature) signature.clear();
    error.textContent = "";
  });
  okButton.addEventListener("click", confirm);
  $("pad-close").addEventListener("click", close);
  // No page scroll, pull-to-refresh or zoom under the finger while the box is open.
  pad.addEventListener("touchmove", (event) => event.preventDefault(), { passive: false });
  const refit = () => {
    if (!pad.hidden) fit();
  };
  window.addEventListener("resize", refit);
  window.addEventListener("orientationchange", refit);
  if (window.visualViewport) window.visualViewport.addEventListener("resize", refit);

  renderList();
  return {
    open,
    close,
    /* The page reloaded the agreement: the server's boxes are the truth. */
    reset(nextChars, nextDrawn) {
      if (!pad.hidden) close();
      letters = Array.from(nextChars);
      done = new Set(nextDrawn);
      for (const index of [...ink.keys()]) if (!done.has(index)) ink.delete(index);
      renderList();
    },
    /* For tests and the page: what the box holds now. */
    data: () => (signature ? signature.toData() : []),
    side: () => side,
  };
}
