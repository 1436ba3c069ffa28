/* 《放弃签约声明书》: the declaration the server serves (with its version), a tick, then two
 * confirmations before the POST (lib/declaration.js); the server records it with that
 * version. */

import { api } from "./lib/api.js";
import { declaration } from "./lib/declaration.js";
import { agreementId } from "./lib/signing.js";

const url = `/api/v1/signing/agreements/${agreementId()}/abandon/`;
const button = document.getElementById("abandon-btn");

declaration({
  article: document.getElementById("declaration"),
  ack: document.getElementById("abandon-ack"),
  button,
  read: async () => {
    const data = await api("GET", url);
    return { text: data.text, version: data.version };
  },
  questions: [
    { title: "放弃签约", body: "确定放弃本次签约吗？", ok: "确定放弃" },
    {
      title: "再次确认",
      body: "放弃后本协议不再签署，且不能撤销。请再次确认是否放弃签约。",
      cancel: "我再想想",
      ok: "确认放弃",
    },
  ],
  send: (version) => api("POST", url, { declaration_version: version }),
  sent() {
    document.querySelector(".anju-agree-area").hidden = true;
    document.querySelector(".anju-tips-box").hidden = true;
    button.closest(".weui-btn-area").querySelector("a").textContent = "返回网上签约";
    button.hidden = true;
    document.getElementById("abandon-done").hidden = false;
    // The button that had the focus is gone: the result takes it (and is read out).
    document.getElementById("abandon-done-title").focus();
  },
});
