/* The declaration page: the text the server serves, 「上述条款，我已阅知」, then
 * 【开始预选】 or 【去选房】, enabled only when ticked. The acknowledgement is recorded by the
 * API with the text's version. */
(() => {
  "use strict";

  const { el, setBusy } = window.Anju;
  const { sel } = window.Anju;
  const { call, clock, fmt, showFailure } = sel;
  const rid = sel.roundId();
  const phase = document.getElementById("selection").dataset.phase;
  const next = `/h5/selection/${rid}/${phase === "pre" ? "pre" : "formal"}/`;
  const article = document.getElementById("declaration");
  const ack = document.getElementById("ack");
  const go = document.getElementById("go-btn");
  const status = document.getElementById("window-status");
  let version = "";
  let waiting = false; // formal: the family's window has not opened yet
  let stateTimer = null;

  function sync() {
    const ready = ack.checked && Boolean(version) && !waiting;
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

  /* 正选/补选 declaration: say when the family's window opens, and open 【去选房】 by itself
   * at that time (server clock); after the window, say so and point to the result. */
  async function watchWindow() {
    if (phase === "pre") return;
    clearTimeout(stateTimer);
    try {
      const state = await call("GET", `/api/v1/selection/${rid}/state/`);
      const upcoming = state.phase !== "formal" && state.next_session;
      waiting = state.phase !== "formal";
      if (state.phase === "formal") {
        status.hidden = true;
      } else if (upcoming) {
        const word = sel.selectingWord(upcoming);
        status.textContent = `您的${word}时间为${fmt.window(upcoming)}，届时本页将自动开放【去选房】。`;
        status.hidden = false;
        const wait = Date.parse(upcoming.starts_at) - clock.now() + 300;
        if (wait < 6 * 3600 * 1000) stateTimer = setTimeout(watchWindow, Math.max(wait, 300));
      } else {
        status.textContent = "您的选房场次已结束，请查看选房结果。";
        status.hidden = false;
      }
    } catch (failure) {
      await showFailure(failure);
    }
    sync();
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
  watchWindow();
})();
