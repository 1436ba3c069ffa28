/* 网上签约: the family's agreements with their status (待签字 / 已签字 / 已盖章 / 作废 /
 * 已放弃), a staff rejection's reason, 【签约协议】 (the QR code) while it can be signed, and
 * 【查看】 / 【下载】 the PDF once signed (print from the browser's PDF viewer). */
(() => {
  "use strict";

  const { api, el } = window.Anju;
  const { fmt, badge, showFailure } = window.Anju.signing;
  const root = document.getElementById("agreements");
  const loading = document.getElementById("loading");

  function row(label, value, attrs = {}) {
    return el(
      "div",
      { class: "weui-form-preview__item" },
      el("dt", { class: "weui-form-preview__label", text: label }),
      el("dd", { class: "weui-form-preview__value", text: value, ...attrs }),
    );
  }

  function card(agreement) {
    const id = agreement.id;
    const rows = [row("签约期限", fmt.window(agreement))];
    if (agreement.reject_reason && agreement.status === "pending") {
      rows.push(row("退回原因", agreement.reject_reason, { class: "weui-form-preview__value anju-reject" }));
    }
    if (agreement.signed_at) rows.push(row("签字时间", fmt.dateTime(agreement.signed_at)));
    if (agreement.sealed_at) rows.push(row("盖章时间", fmt.dateTime(agreement.sealed_at)));
    if (agreement.status === "signed") rows.push(row("审核状态", "待工作人员审核及盖章"));
    if (agreement.status === "signed" || agreement.status === "sealed") {
      rows.push(row("协议验证码", agreement.verification_code));
    }

    const ops = [];
    if (agreement.status === "pending") {
      ops.push(
        el("a", {
          role: "button",
          class: "weui-btn anju-btn_blue",
          href: `/h5/signing/${id}/qr/`,
          text: "签约协议",
        }),
        el("a", { class: "weui-link anju-link-btn", href: `/h5/signing/${id}/abandon/`, text: "放弃签约" }),
      );
    }
    if (agreement.status === "signed" || agreement.status === "sealed") {
      const pdf = `/api/v1/signing/agreements/${id}/document/`;
      ops.push(
        el("a", {
          role: "button",
          class: "weui-btn anju-btn_blue",
          href: pdf,
          target: "_blank",
          rel: "noopener",
          text: "查看",
        }),
        el("a", {
          role: "button",
          class: "weui-btn weui-btn_default",
          href: `${pdf}?download=1`,
          download: `agreement-${agreement.verification_code}.pdf`,
          text: "下载",
        }),
      );
    }

    return el(
      "article",
      {
        class: "weui-form-preview anju-card anju-agreement",
        "aria-labelledby": `agreement-${id}-title`,
        dataset: { agreementId: String(id), status: agreement.status },
      },
      el(
        "div",
        { class: "anju-agreement__head" },
        el("h3", { class: "anju-agreement__title", id: `agreement-${id}-title`, text: agreement.title }),
        badge(agreement, { id: `agreement-${id}-status` }),
      ),
      el("dl", { class: "weui-form-preview__bd" }, rows),
      ops.length ? el("div", { class: "anju-agreement__ops" }, ops) : null,
    );
  }

  async function load() {
    try {
      const agreements = await api("GET", "/api/v1/signing/agreements/");
      root.replaceChildren(
        ...(agreements.length
          ? agreements.map(card)
          : [el("p", { class: "anju-empty", text: "暂无需要签署的协议" })]),
      );
    } catch (failure) {
      root.replaceChildren(el("p", { class: "anju-empty", text: "加载失败，请刷新页面重试" }));
      await showFailure(failure);
    } finally {
      loading.hidden = true;
    }
  }

  load();
})();
