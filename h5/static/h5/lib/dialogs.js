/* WeUI dialogs: a modal that keeps focus and gives it back, Escape for the first (cancelling)
 * button. */

import { el } from "./dom.js";

let dialogCount = 0;

/* `body` is text or a node; `buttons` [{label, value, kind}] with kind default | primary |
 * warn. Resolves with the tapped button's value. */
export function dialog({ title = "", body = "", buttons = [{ label: "确定", value: true }] } = {}) {
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
        // A dialog without a title is named by its message (axe: aria-dialog-name).
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
export function alert(message, { title = "", label = "知道了" } = {}) {
  return dialog({ title, body: message, buttons: [{ label, value: true }] });
}

/* A question with a way back (the first button, and Escape) and a go-ahead: resolves true
 * only when the go-ahead is tapped. */
export function confirm(body, { title = "", cancel = "取消", ok = "确定", kind = "primary" } = {}) {
  return dialog({
    title,
    body,
    buttons: [
      { label: cancel, value: false, kind: "default" },
      { label: ok, value: true, kind },
    ],
  });
}
