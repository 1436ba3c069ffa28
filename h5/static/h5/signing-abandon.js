/* 《放弃签约声明书》: the declaration the server serves (with its version), a tick, then two
 * confirmations before the POST; the server records it with that version. */
(() => {
  "use strict";

  const { api, dialog, setBusy } = window.Anju;
  const { showFailure, paragraphs, agreementId } = window.Anju.signing;

  const url = `/api/v1/signing/agreements/${agreementId()}/abandon/`;
  const article = document.getElementById("declaration");
  const ack = document.getElementById("abandon-ack");
  const button = document.getElementById("abandon-btn");
  let version = "";

  function sync() {
    const ready = ack.checked && Boolean(version);
    button.disabled = !ready;
    button.classList.toggle("weui-btn_disabled", !ready);
  }

  async function load() {
    article.setAttribute("aria-busy", "true");
    try {
      const data = await api("GET", url);
      article.replaceChildren(...paragraphs(data.text, { heading: true }));
      version = data.version;
      ack.disabled = false;
    } catch (failure) {
      article.replaceChildren(...paragraphs("声明加载失败，请刷新页面重试"));
      await showFailure(failure);
    } finally {
      article.setAttribute("aria-busy", "false");
      sync();
    }
  }

  ack.addEventListener("change", sync);

  button.addEventListener("click", async () => {
    if (button.disabled || !ack.checked) return;
    const first = await dialog({
      title: "放弃签约",
      body: "确定放弃本次签约吗？",
      buttons: [
        { label: "取消", value: false, kind: "default" },
        { label: "确定放弃", value: true, kind: "warn" },
      ],
    });
    if (!first) return;
    const second = await dialog({
      title: "再次确认",
      body: "放弃后本协议不再签署，且不能撤销。请再次确认是否放弃签约。",
      buttons: [
        { label: "我再想想", value: false, kind: "default" },
        { label: "确认放弃", value: true, kind: "warn" },
      ],
    });
    if (!second) return;
    setBusy(button, true, "正在提交…");
    try {
      await api("POST", url, { declaration_version: version });
      document.querySelector(".anju-agree-area").hidden = true;
      document.querySelector(".anju-tips-box").hidden = true;
      button.closest(".weui-btn-area").querySelector("a").textContent = "返回网上签约";
      button.hidden = true;
      document.getElementById("abandon-done").hidden = false;
    } catch (failure) {
      setBusy(button, false);
      if (failure.error && failure.error.code === "declaration_outdated") {
        ack.checked = false;
        await showFailure(failure);
        await load();
        return;
      }
      await showFailure(failure);
      sync();
    }
  });

  load();
})();
