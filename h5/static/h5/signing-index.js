/* 网上签约: the family's agreements with their status (待签字 / 已签字 / 已盖章 / 作废 /
 * 已放弃), a staff rejection's reason, 【签约协议】 (the QR code) while it can be signed, and
 * 【查看】 (the viewer: pages, 打印, 保存) / 【下载】 the PDF once signed. 「请在签约期限内完成
 * 签约」 only while something waits to be signed; the consultation numbers are the
 * agreements' own (the API's `help`). */

import { api, showFailure } from "./lib/api.js";
import { fill } from "./lib/consult.js";
import { CODE, el, row } from "./lib/dom.js";
import { dateTime, range } from "./lib/format.js";
import { badge } from "./lib/signing.js";
import { card as leaseCard, LEASE_TITLE } from "./lease-common.js";

const root = document.getElementById("agreements");
const loading = document.getElementById("loading");

function card(agreement) {
  const id = agreement.id;
  const rows = [];
  if (agreement.status === "pending" || agreement.status === "void") {
    rows.push(row("签约期限", range(agreement.window_starts_at, agreement.window_ends_at)));
  }
  if (agreement.reject_reason && agreement.status === "pending") {
    rows.push(row("退回原因", agreement.reject_reason, { class: "weui-form-preview__value anju-reject" }));
  }
  if (agreement.signed_at) rows.push(row("签字时间", dateTime(agreement.signed_at)));
  if (agreement.sealed_at) rows.push(row("盖章时间", dateTime(agreement.sealed_at)));
  if (agreement.status === "signed") rows.push(row("审核状态", "待工作人员审核及盖章"));
  if (agreement.status === "signed" || agreement.status === "sealed") {
    rows.push(row("协议验证码", agreement.verification_code, CODE));
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
        href: `/h5/signing/${id}/view/?from=signing`,
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

/* 租赁合同签约: the family's lease (its own page, stage by stage), or 「去签约」 when the
 * family holds an allocation and has not started yet; each card is titled with the
 * contract's name (the section heading says 租赁合同签约 once). Its agreement is not listed
 * again below. Returns the agreement ids of the leases, or null when the section is empty.
 * The rounds are read beside the leases, not after them: a family without a lease (every
 * family until its lease starts) would otherwise wait one more round trip for the page. A
 * family with a lease does not need them, and a failed read of them is then ignored. */
async function leaseEntry() {
  const section = document.getElementById("lease-entry");
  const list = document.getElementById("leases");
  const roundsRead = api("GET", "/api/v1/selection/rounds/");
  roundsRead.catch(() => {}); // awaited below only when there is no lease
  const leases = await api("GET", "/api/v1/lease/");
  if (leases.length) {
    list.replaceChildren(
      ...leases.map((lease) =>
        leaseCard(lease, {
          action: [lease.agreement.status === "pending" ? "去签约" : "查看详情", `/h5/lease/${lease.id}/`],
        }),
      ),
    );
    section.hidden = false;
    return new Set(leases.map((lease) => lease.agreement.id));
  }
  // The rounds list names the unit allocated in each: no read of each round's result.
  const rounds = await roundsRead;
  for (const round of rounds) {
    const unit = round.allocated_unit;
    if (!unit) continue;
    list.replaceChildren(
      el(
        "article",
        {
          class: "weui-form-preview anju-card anju-agreement",
          "aria-labelledby": "lease-new-title",
          id: "lease-new",
        },
        el(
          "div",
          { class: "anju-agreement__head" },
          el("h3", { class: "anju-agreement__title", id: "lease-new-title", text: LEASE_TITLE }),
          el("span", { class: "anju-badge anju-badge_pending", text: "待签约" }),
        ),
        el(
          "dl",
          { class: "weui-form-preview__bd" },
          row("选定房源", `${round.name} ${unit.building}栋${unit.number}`),
        ),
        el(
          "div",
          { class: "anju-agreement__ops" },
          el("a", { role: "button", class: "weui-btn anju-btn_blue", href: "/h5/lease/", text: "去签约" }),
        ),
      ),
    );
    section.hidden = false;
    return new Set();
  }
  return null;
}

/* The tips under the list: the deadline sentence only while an agreement waits to be
 * signed; the numbers of the agreements' templates (the site's default stays when none). */
function tips(agreements) {
  document.getElementById("tip-deadline").hidden = !agreements.some(
    (agreement) => agreement.status === "pending",
  );
  const first = agreements.find((agreement) => agreement.help);
  if (first) fill(document.getElementById("signing-tips"), first.help);
}

async function load() {
  try {
    // The lease entry (its two reads) and the agreements side by side. A lease
    // entry that cannot be read leaves the agreements listed; an ended session goes to login.
    // `leases`: the lease section's agreement ids (null: the section is empty, or unread).
    const [leases, all] = await Promise.all([
      leaseEntry().catch((failure) => (failure && failure.redirecting ? undefined : null)),
      api("GET", "/api/v1/signing/agreements/"),
    ]);
    if (leases === undefined) return;
    tips(all);
    const agreements = all.filter((agreement) => !leases || !leases.has(agreement.id));
    if (agreements.length) {
      root.replaceChildren(...agreements.map(card));
    } else if (leases) {
      // The lease above is the one thing to sign: no 「暂无…」 under it to contradict it.
      root.replaceChildren();
      document.getElementById("agreement-list").hidden = true;
    } else {
      root.replaceChildren(el("p", { class: "anju-empty", text: "暂无需要签署的协议" }));
    }
  } catch (failure) {
    root.replaceChildren(el("p", { class: "anju-empty", text: "加载失败，请刷新页面重试" }));
    await showFailure(failure);
  } finally {
    loading.hidden = true;
  }
}

load();
