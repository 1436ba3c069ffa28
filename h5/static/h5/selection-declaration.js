/* The declaration page: the text the server serves, 「上述条款，我已阅知」, then
 * 【开始预选】 or 【去选房】, enabled only when ticked. The acknowledgement is recorded by the
 * API with the text's version. */
(() => {
  "use strict";

  const { el, setBusy } = window.Anju;
  const { sel } = window.Anju;
  const { call, showFailure } = sel;
  const rid = sel.roundId();
  const phase = document.getElementById("selection").dataset.phase;
  const next = `/h5/selection/${rid}/${phase === "pre" ? "pre" : "formal"}/`;
  const article = document.getElementById("declaration");
  const ack = document.getElementById("ack");
  const go = document.getElementById("go-btn");
  let version = "";

  function sync() {
    const ready = ack.checked && Boolean(version);
    go.disabled = !ready;
    go.classList.toggle("weui-btn_disabled", !ready);
  }

  async function load() {
    article.setAttribute("aria-busy", "true");
    try {
      const data = await call("GET", `/api/v1/selection/${rid}/declaration/${phase}/`);
      const [title, ...lines] = data.text.split("\n");
      article.replaceChildren(
        el("h2", { class: "anju-declaration__title", text: title }),
        ...lines.map((line) => el("p", { text: line })),
      );
      version = data.text_version;
      ack.disabled = false;
    } catch (failure) {
      article.replaceChildren(el("p", { class: "anju-empty", text: "声明加载失败，请刷新页面重试" }));
      await showFailure(failure);
    } finally {
      article.setAttribute("aria-busy", "false");
      sync();
    }
  }

  ack.addEventListener("change", sync);

  go.addEventListener("click", async () => {
    if (go.disabled || !ack.checked) return;
    setBusy(go, true, "正在进入…");
    try {
      await call("POST", `/api/v1/selection/${rid}/declaration/${phase}/`, {
        text_version: version,
        acknowledged: true,
      });
      window.location.assign(next);
    } catch (failure) {
      setBusy(go, false);
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
