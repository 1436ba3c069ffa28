/* 我的选房结果: the allocation or each session's outcome, supplementary status, 【补选申请】
 * when the API says the family may apply, 【去签约】 once a unit is allocated. Live: the
 * family's result (confirmed, auto-assigned at the close, staff) appears without a refresh. */
import { dialog } from "./lib/dialogs.js";
import { CODE, el, row, setBusy, toast } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import {
  call,
  clock,
  fmt,
  live,
  roundId,
  selectingLabel,
  selectingWord,
  sessionName,
  showFailure,
  unitDesc,
  unitName,
} from "./lib/selection.js";

const rid = roundId();
const api = `/api/v1/selection/${rid}`;
const root = document.getElementById("result");
let shown = null; // {phase, allocated} of what the page shows

/* A seat's outcome once the session has one; before that, where the session stands by
 * server time. */
function sessionStatus(session) {
  if (session.outcome) return session.outcome_label;
  const now = clock.now();
  if (now < Date.parse(session.starts_at)) return "未开始";
  if (now < Date.parse(session.ends_at)) return "进行中";
  return "正在确定结果";
}

function allocationCard(allocation) {
  const unit = allocation.unit;
  return el(
    "div",
    { class: "weui-form-preview anju-card", "aria-label": "选定房源", id: "allocation" },
    el(
      "div",
      { class: "weui-form-preview__hd" },
      el(
        "div",
        { class: "weui-form-preview__item" },
        el("span", { class: "weui-form-preview__label", text: "选定房源" }),
        el("em", { class: "weui-form-preview__value", id: "allocated-unit", text: unitName(unit) }),
      ),
    ),
    el(
      "dl",
      { class: "weui-form-preview__bd" },
      row("房源信息", unitDesc(unit)),
      row("确定方式", allocation.how_label, { id: "allocation-how" }),
      row("确定时间", fmt.dateTime(allocation.at)),
      row("核验码", allocation.code, { id: "allocation-code", ...CODE }),
    ),
  );
}

function message(icon, title, desc) {
  return el(
    "div",
    { class: "weui-msg anju-result-msg" },
    el("div", { class: "weui-msg__icon-area" }, el("i", { class: `${icon} weui-icon_msg` })),
    el(
      "div",
      { class: "weui-msg__text-area" },
      el("h2", { class: "weui-msg__title", id: "result-title", text: title }),
      desc ? el("p", { class: "weui-msg__desc", text: desc }) : null,
    ),
  );
}

/* 选房记录凭证: the result's entry in the public allocation log, the signed head that
 * includes it and the inclusion proof (docs/TRANSPARENCY.md). The entry is signed into the
 * log within about a second of the result: until then the card says so and asks again. */
let receiptTimer = null;
async function showReceipt(attempt = 0) {
  clearTimeout(receiptTimer);
  let receipt;
  try {
    receipt = await call("GET", `${api}/result/receipt/`);
  } catch (failure) {
    return; // no result entry yet (404): nothing to show
  }
  const old = document.getElementById("receipt");
  // In the family's words: where the result is in the log, and when the system last signed
  // the log (the head moves on as later results are written: 「最近」, not the family's own).
  // The 核验码 is on the result card above; the signed head and the inclusion proof are in
  // the downloaded file, for the verification tools (docs/TRANSPARENCY.md).
  const rows = receipt.head
    ? [
        row("日志序号", `第${receipt.index + 1}条（共${receipt.head.size}条）`, { id: "receipt-index" }),
        row("最近签名时间", fmt.dateTime(receipt.head.time), { id: "receipt-signed" }),
      ]
    : [row("状态", "正在写入选房日志，请稍候…", { id: "receipt-pending" })];
  const card = el(
    "section",
    { id: "receipt", "aria-labelledby": "receipt-title" },
    el("h3", { class: "weui-cells__title anju-section-title", id: "receipt-title", text: "选房记录凭证" }),
    el("div", { class: "weui-form-preview anju-card" }, el("dl", { class: "weui-form-preview__bd" }, rows)),
    receipt.head
      ? el(
          "p",
          { class: "weui-cells__tips" },
          "您的选房结果已记入公开的选房日志并由系统签名，任何人可核验。",
          el("a", {
            href: `/h5/ledger/${rid}/verify/?code=${receipt.code}`,
            id: "receipt-verify",
            text: "在线核验",
          }),
          "　",
          el("a", {
            href: `${api}/result/receipt/`,
            download: `选房凭证-${receipt.code}.json`,
            id: "receipt-download",
            text: "下载凭证文件",
          }),
          "（供核验工具使用）",
        )
      : null,
  );
  if (old) old.replaceWith(card);
  else root.append(card);
  if (!receipt.head && attempt < 30) receiptTimer = setTimeout(() => showReceipt(attempt + 1), 1000);
}

/* The session the headline speaks of: the running one, else the next, else the last. */
function currentSession(result) {
  const now = clock.now();
  const sessions = result.sessions || [];
  return (
    sessions.find((s) => Date.parse(s.starts_at) <= now && now < Date.parse(s.ends_at)) ||
    sessions.find((s) => now < Date.parse(s.starts_at)) ||
    sessions[sessions.length - 1] ||
    null
  );
}

/* The session whose explanation the headline tells. Once a unit is allocated: the session
 * it was auto-assigned in (its cart's story), never an earlier session's miss; none for a
 * unit confirmed or given by staff (whose session's explanation, if any, is the miss that
 * came before it): the headline then asks for signing. Without a unit, once no session is
 * left: the last closed session with an explanation (its cart, 未进入选房). The list of
 * sessions leaves that explanation out, so the page says it once; every other session
 * keeps its own. */
function toldSession(result) {
  const sessions = result.sessions || [];
  const allocation = result.allocation;
  if (allocation) {
    if (allocation.how !== "auto") return null;
    return sessions.find((s) => s.id === allocation.session && s.explanation) || null;
  }
  const waiting = ["not_started", "pre", "formal"].includes(result.phase);
  if (result.gave_up || waiting) return null;
  const done = sessions.filter((s) => s.explanation);
  return done.length ? done[done.length - 1] : null;
}

/* What the family has to do about its lease now: the deadline while it is to be signed, not
 * 「请尽快办理网上签约」 for ever (the page is still read after the lease is approved). */
function signingSentence(signing) {
  switch (signing && signing.status) {
    case "todo":
      return `请于${dateTime(signing.deadline)}前完成网上签约。`;
    case "submitted":
      return "签约申请已提交，等待工作人员审核。";
    case "approved":
      return "网上签约已完成，审核已通过。";
    case "closed": // void or abandoned: the lease's page says which, and whom to call
      return "本次签约已结束，详情请查看签约页面。";
    default:
      return "";
  }
}

function headline(result, told) {
  const session = currentSession(result);
  const word = selectingWord(session);
  const explanation = told ? told.explanation : "";
  if (result.allocation) {
    return message("weui-icon-success", "选房成功", explanation || signingSentence(result.signing));
  }
  if (result.gave_up) return message("weui-icon-info", "您已主动放弃本次选房", "主动放弃选房的家庭不能申请补选。");
  switch (result.phase) {
    case "not_started":
    case "pre":
      return message("weui-icon-waiting", `尚未开始${word}`, `请在您的${word}时间内进入选房。`);
    case "formal":
      return message("weui-icon-waiting", selectingLabel(session), `请在${word}时间内确认选房。`);
    default:
      return message("weui-icon-info", "未选定房源", explanation);
  }
}

function sessionsList(sessions, told) {
  if (!sessions.length) return null;
  return el(
    "section",
    { "aria-labelledby": "sessions-title" },
    el("h3", { class: "weui-cells__title anju-section-title", id: "sessions-title", text: "选房场次" }),
    el(
      "div",
      { class: "weui-cells anju-inset" },
      sessions.map((session) =>
        el(
          "div",
          { class: "weui-cell" },
          el(
            "div",
            { class: "weui-cell__bd" },
            el("p", { text: sessionName(session) }),
            el("p", { class: "weui-cell__desc", text: fmt.window(session) }),
            session.explanation && session !== told
              ? el("p", { class: "weui-cell__desc anju-explanation", text: session.explanation })
              : null,
          ),
          el("div", { class: "weui-cell__ft", text: sessionStatus(session) }),
        ),
      ),
    ),
  );
}

function supplementary(result) {
  const info = result.supplementary;
  const cells = [];
  if (info.applied_at) {
    cells.push(["补选申请", `已申请（${fmt.dateTime(info.applied_at)}）`]);
    cells.push([
      "补选场次",
      info.session ? fmt.window(info.session) : "待工作人员安排，安排后将以短信通知您",
    ]);
  } else if (info.can_apply) {
    cells.push(["申请截止", fmt.dateTime(info.deadline)]);
  } else if (info.closed) {
    // The window closed without an application: said, not left out without a word.
    cells.push(["补选申请", `未申请（已于${fmt.dateTime(info.deadline)}截止）`]);
  }
  if (!cells.length) return null;
  const section = el(
    "section",
    { id: "supplementary", "aria-labelledby": "supplementary-title" },
    el("h3", { class: "weui-cells__title anju-section-title", id: "supplementary-title", text: "补选" }),
    el(
      "div",
      { class: "weui-cells anju-inset" },
      cells.map(([label, value]) =>
        el(
          "div",
          { class: "weui-cell" },
          el("div", { class: "weui-cell__hd anju-result__label", text: label }),
          el("div", { class: "weui-cell__bd weui-cell__ft anju-result__value", text: value }),
        ),
      ),
    ),
  );
  if (info.can_apply) {
    section.append(
      el(
        "div",
        { class: "weui-btn-area anju-btn-area" },
        el("button", {
          type: "button",
          class: "weui-btn weui-btn_primary",
          id: "supplementary-btn",
          text: "补选申请",
          onclick: (event) => apply(event.currentTarget, info.deadline),
        }),
      ),
    );
  }
  return section;
}

async function apply(button, deadline) {
  const ok = await dialog({
    title: "补选申请",
    body: `补选申请截止时间为${fmt.dateTime(deadline)}。补选申请截止后，工作人员将安排补选场次，并以短信通知您时间。确认申请补选吗？`,
    buttons: [
      { label: "取消", value: false, kind: "default" },
      { label: "确认申请", value: true },
    ],
  });
  if (!ok) return;
  setBusy(button, true, "正在提交…");
  try {
    await call("POST", `${api}/supplementary/`);
    toast("已提交补选申请");
    await load();
  } catch (failure) {
    setBusy(button, false);
    await showFailure(failure);
  }
}

function actions(result) {
  if (result.allocation) {
    // 去签约 while the lease is to be signed; its page (the stage, the materials) after.
    const todo = !result.signing || result.signing.status === "todo";
    return el(
      "div",
      { class: "weui-btn-area anju-btn-area" },
      el("a", {
        role: "button",
        class: `weui-btn ${todo ? "weui-btn_primary" : "weui-btn_default"}`,
        href: "/h5/lease/",
        id: "lease-go",
        text: todo ? "去签约" : "查看签约",
      }),
    );
  }
  if (result.phase === "formal") {
    return el(
      "div",
      { class: "weui-btn-area anju-btn-area" },
      el("a", {
        role: "button",
        class: "weui-btn weui-btn_primary",
        href: `/h5/selection/${rid}/declaration/formal/`,
        text: "去选房",
      }),
    );
  }
  return null;
}

async function load() {
  try {
    const result = await call("GET", `${api}/result/`);
    shown = { phase: result.phase, allocated: Boolean(result.allocation) };
    const told = toldSession(result);
    root.replaceChildren(
      ...[
        headline(result, told),
        result.allocation ? allocationCard(result.allocation) : null,
        actions(result),
        sessionsList(result.sessions, told),
        supplementary(result),
      ].filter(Boolean),
    );
    if (result.allocation || result.gave_up || (result.sessions || []).some((s) => s.outcome)) {
      showReceipt();
    }
    if (window.location.hash === "#supplementary") {
      const target = document.getElementById("supplementary");
      if (target) target.scrollIntoView();
    }
  } catch (failure) {
    await showFailure(failure);
  } finally {
    document.getElementById("loading").hidden = true;
  }
}

function onLive(event, stream) {
  switch (event.type) {
    case "selection.result_assigned":
    case "selection.gave_up":
      return load();
    case "selection.session_opened":
    case "selection.session_closed":
      return stream.startsWith("session.") ? load() : undefined;
    default:
      return undefined;
  }
}

function onSnapshot(data) {
  if (shown && (data.phase !== shown.phase || Boolean(data.allocation) !== shown.allocated)) {
    return load();
  }
  return undefined;
}

load().then(() => shown && live({ onSnapshot, onEvent: onLive }));
