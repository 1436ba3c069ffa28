/* A declaration the applicant reads, ticks and sends back with the version read: the
 * selection's 预选/正选声明 (「上述条款，我已阅知」, then 【开始预选】/【去选房】) and 网上签约's
 * 《放弃签约声明书》 (a tick, two questions, then the POST). The server records the
 * acknowledgement with that version and refuses an outdated one (`declaration_outdated`):
 * the tick is cleared, the refusal shown and the new text read.
 *
 *   import { declaration } from "./lib/declaration.js"
 *   const form = declaration({
 *     article, ack, button,             // the text's <article>, the tick, the button
 *     read: async () => ({ text, version }),   // GET the text
 *     render: (text) => nodes,          // default: paragraphs(text, {heading: true})
 *     blocked: () => false,             // another reason the button stays off (a window not open)
 *     questions: [{ title, body, cancel, ok }],  // asked in turn (warn dialogs); any 「no」 stops
 *     send: async (version) => {},      // the POST
 *     busyLabel: "正在提交…",
 *     sent() {},                        // after the POST succeeded (the button stays busy)
 *   });
 *   form.sync()                         // re-check the button (after `blocked` changed)
 *   form.reload()                       // read the text again
 */

import { showFailure } from "./api.js";
import { confirm } from "./dialogs.js";
import { el, paragraphs, setBusy } from "./dom.js";

export function declaration({
  article,
  ack,
  button,
  read,
  render = (text) => paragraphs(text, { heading: true }),
  blocked = () => false,
  questions = [],
  send,
  busyLabel = "正在提交…",
  sent = () => {},
}) {
  let version = "";

  function sync() {
    const ready = ack.checked && Boolean(version) && !blocked();
    button.disabled = !ready;
    button.classList.toggle("weui-btn_disabled", !ready);
  }

  async function reload() {
    article.setAttribute("aria-busy", "true");
    try {
      const data = await read();
      article.replaceChildren(...render(data.text));
      version = data.version;
      ack.disabled = false;
    } catch (failure) {
      article.replaceChildren(el("p", { class: "anju-empty", text: "声明加载失败，请刷新页面重试" }));
      await showFailure(failure);
    } finally {
      article.setAttribute("aria-busy", "false");
      sync();
    }
  }

  async function submit() {
    if (button.disabled || !ack.checked) return;
    for (const { title, body, cancel = "取消", ok = "确定" } of questions) {
      if (!(await confirm(body, { title, cancel, ok, kind: "warn" }))) return;
    }
    setBusy(button, true, busyLabel);
    try {
      await send(version);
    } catch (failure) {
      setBusy(button, false);
      if (failure.error && failure.error.code === "declaration_outdated") {
        ack.checked = false;
        await showFailure(failure);
        await reload();
        return;
      }
      await showFailure(failure);
      sync();
      return;
    }
    sent();
  }

  ack.addEventListener("change", sync);
  button.addEventListener("click", submit);
  reload();
  return { sync, reload };
}
