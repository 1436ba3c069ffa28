/* 租赁合同签约 shared pieces: a lease's card on 网上签约, its status badge the agreement's own
 * (待签字 / 已签字 / 已盖章 / 作废 / 已放弃, as for every agreement and in 网上签约记录) and the
 * lease's stage as 签约进度 while it is under way. What the card says comes from the lease JSON
 * (GET /api/v1/lease/). */

import { el, row } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { badge } from "./lib/signing.js";

const UNDER_WAY = new Set(["info", "face", "contract", "deposit", "review"]);

/* The contract's name (the lease template's), for a card under the 「租赁合同签约」 heading. */
export const LEASE_TITLE = "公共租赁住房租赁合同";

/* The lease's card, titled with its contract's name; `action` is [label, href] for its
 * button. */
export function card(lease, { title = lease.agreement.title || LEASE_TITLE, action } = {}) {
  const id = lease.id;
  const rows = [row("承租住房", lease.unit.label), row("月租金", `${lease.monthly_rent}元`)];
  if (UNDER_WAY.has(lease.stage)) rows.push(row("签约进度", lease.stage_label, { id: `lease-${id}-stage` }));
  if (lease.agreement.status === "pending") {
    rows.push(row("签约截止", dateTime(lease.agreement.window_ends_at)));
  }
  if (lease.submitted_at) rows.push(row("提交时间", dateTime(lease.submitted_at)));
  if (lease.agreement.reject_reason && lease.agreement.status === "pending") {
    rows.push(row("退回原因", lease.agreement.reject_reason, { class: "weui-form-preview__value anju-reject" }));
  }
  const [label, href] = action || ["查看详情", `/h5/lease/${id}/`];
  return el(
    "article",
    {
      class: "weui-form-preview anju-card anju-agreement",
      "aria-labelledby": `lease-${id}-title`,
      dataset: { leaseId: String(id), stage: lease.stage },
    },
    el(
      "div",
      { class: "anju-agreement__head" },
      el("h3", { class: "anju-agreement__title", id: `lease-${id}-title`, text: title }),
      badge(lease.agreement, { id: `lease-${id}-status` }),
    ),
    el("dl", { class: "weui-form-preview__bd" }, rows),
    el(
      "div",
      { class: "anju-agreement__ops" },
      el("a", { role: "button", class: "weui-btn anju-btn_blue", href, text: label }),
    ),
  );
}
