/* 网上签约记录 (「我的」): every agreement of the family, the lease and the rent-subsidy
 * agreement alike, newest first, each with the agreement's own status (待签字 / 已签字 /
 * 已盖章 / 作废 / 已放弃: the same words as 网上签约) and 「查看详情」 (the viewer: pages,
 * 打印, 保存). A lease adds its unit and, while it is under way, its stage as secondary text,
 * and 「押金收据」 once approved; a sealed agreement adds 「签约证据包」 (the evidence package
 * download). Everything comes from the API; no rule is decided here. */

import { api, showFailure } from "./lib/api.js";
import { $, CODE, el, row } from "./lib/dom.js";
import { dateTime, range } from "./lib/format.js";
import { fill } from "./lib/consult.js";
import { badge } from "./lib/signing.js";

const root = $("records");

function button(text, href, kind = "default") {
  const cls = kind === "blue" ? "weui-btn anju-btn_blue" : "weui-btn weui-btn_default";
  return el("a", { role: "button", class: cls, href, text });
}

function card(agreement, lease) {
  const id = agreement.id;
  const pending = agreement.status === "pending";
  const rows = [];
  if (lease) {
    rows.push(row("承租住房", lease.unit.label)); // named from the unit, not the round
    if (pending || agreement.status === "signed") {
      rows.push(row("签约进度", lease.stage_label, { class: "weui-form-preview__value anju-record__stage" }));
    }
  }
  if (pending) rows.push(row("签约期限", range(agreement.window_starts_at, agreement.window_ends_at)));
  if (pending && agreement.reject_reason) {
    rows.push(row("退回原因", agreement.reject_reason, { class: "weui-form-preview__value anju-reject" }));
  }
  if (agreement.signed_at) rows.push(row("签字时间", dateTime(agreement.signed_at)));
  if (lease && lease.submitted_at) rows.push(row("提交时间", dateTime(lease.submitted_at)));
  if (agreement.sealed_at) rows.push(row("盖章时间", dateTime(agreement.sealed_at)));
  if (agreement.status === "signed" || agreement.status === "sealed") {
    rows.push(row(lease ? "合同验证码" : "协议验证码", agreement.verification_code, CODE));
  }

  const ops = [];
  if (pending) {
    ops.push(button("继续签约", lease ? `/h5/lease/${lease.id}/` : `/h5/signing/${id}/qr/`, "blue"));
  }
  ops.push(button("查看详情", `/h5/signing/${id}/view/?from=records`, pending ? "default" : "blue"));
  if (lease && lease.materials && lease.materials.receipt) {
    ops.push(button("押金收据", `/h5/signing/${id}/receipt/?from=records`));
  }
  if (agreement.status === "sealed") {
    // The zip of every record of the signing, checkable offline (docs/TRANSPARENCY.md);
    // the API refuses it before sealing.
    const link = button("签约证据包", `/api/v1/signing/agreements/${id}/evidence-package/`);
    link.setAttribute("download", "");
    ops.push(link);
  }

  return el(
    "article",
    {
      class: "weui-form-preview anju-card anju-agreement",
      "aria-labelledby": `record-${id}-title`,
      dataset: { agreementId: String(id), status: agreement.status, kind: lease ? "lease" : "agreement" },
    },
    el(
      "div",
      { class: "anju-agreement__head" },
      el("h3", { class: "anju-agreement__title", id: `record-${id}-title`, text: agreement.title }),
      badge(agreement, { id: `record-${id}-status` }),
    ),
    rows.length ? el("dl", { class: "weui-form-preview__bd" }, rows) : null,
    el("div", { class: "anju-agreement__ops" }, ops),
  );
}

async function load() {
  try {
    const [agreements, leases] = await Promise.all([
      api("GET", "/api/v1/signing/agreements/"),
      api("GET", "/api/v1/lease/"),
    ]);
    const leaseOf = new Map(leases.map((lease) => [lease.agreement.id, lease]));
    root.replaceChildren(
      ...(agreements.length
        ? agreements.map((agreement) => card(agreement, leaseOf.get(agreement.id)))
        : [el("p", { class: "anju-empty", text: "暂无网上签约记录" })]),
    );
    const first = agreements.find((agreement) => agreement.help);
    if (first) fill($("records-tips"), first.help);
  } catch (failure) {
    root.replaceChildren(el("p", { class: "anju-empty", text: "加载失败，请刷新页面重试" }));
    await showFailure(failure);
  } finally {
    $("loading").hidden = true;
  }
}

load();
