/* 网上签约 shared helpers: time formats, the status badge, refusals shown as dialogs.
 * Pages render what the API returns and send the applicant's actions to it; the order of
 * steps and every check is the server's. Exposed as window.Anju.signing. */
(() => {
  "use strict";

  const { el, alert, LOGIN_URL } = window.Anju;
  const { TZ } = window.Anju.fmt; // the server's zone: times read the same on every device

  const fmt = {
    /* 「2026年1月23日 18:00」: the one format of every page (app.js `Anju.fmt`). */
    dateTime: window.Anju.fmt.dateTime,
    /* 「2026年1月20日 09:30 至 2026年1月23日 18:00」 */
    window(agreement) {
      return `${fmt.dateTime(agreement.window_starts_at)} 至 ${fmt.dateTime(agreement.window_ends_at)}`;
    },
  };

  /* 待签字 / 已签字 / 已盖章 / 作废 / 已放弃, coloured by status. */
  function badge(agreement, attrs = {}) {
    return el("span", {
      class: `anju-badge anju-badge_${agreement.status}`,
      text: agreement.status_label,
      ...attrs,
    });
  }

  /* An API refusal: the login page for an ended session, else the server's Chinese message
   * in a dialog. */
  async function showFailure(failure, { title = "" } = {}) {
    if (failure && failure.redirecting) return;
    if (failure && failure.status === 401) {
      const next = window.location.pathname + window.location.search;
      window.location.assign(`${LOGIN_URL}?next=${encodeURIComponent(next)}`);
      return;
    }
    const message = (failure && failure.error && failure.error.message) || "系统繁忙，请稍后再试";
    await alert(message, { title });
  }

  /* Text with line breaks as paragraphs; the first line as the heading when asked. */
  function paragraphs(text, { heading = false } = {}) {
    const lines = String(text || "")
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean);
    const nodes = [];
    if (heading && lines.length) nodes.push(el("h2", { text: lines.shift() }));
    for (const line of lines) nodes.push(el("p", { text: line }));
    return nodes;
  }

  function agreementId() {
    const root = document.getElementById("signing");
    return root ? Number.parseInt(root.dataset.agreementId, 10) : null;
  }

  window.Anju.signing = { fmt, badge, showFailure, paragraphs, agreementId, TZ };
})();
