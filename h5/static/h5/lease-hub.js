/* 租赁合同签约 (guide 000, section 三), on a desktop or a phone: the stepper 完善承租信息 →
 * 人脸识别 → 签订合同 → 押金缴纳 → 待审核, driven by the lease's `stage` from the API
 * (GET /api/v1/lease/<id>/). The page shows what the stage asks for and sends the applicant's
 * actions to the API; the order of stages and every check is the server's.
 *
 * - info: the unit, the registered mobile (修改手机号 with an SMS code to the new number) and
 *   租金托收 (bank, account, holder, both card photos) → 「提交，下一步」.
 * - face / contract: the stage's QR code (POST …/qr/) and the phone's progress on the QR
 *   progress socket (lib/qr-progress.js: replay, gap fill, reconnect, polling) with the
 *   ticket's stream token. When the phone finishes the stage (face: step ≥ 4, contract: step
 *   7) the page reads the lease again and moves on, live.
 * - deposit: WeChat Pay Native (guide 000: scan the desktop's code with WeChat, pay on the
 *   phone). The code shown is the payment order's code_url (POST …/deposit/, its PNG made by
 *   the server), with the amount and the order's close time (the window's end); a stage
 *   ticket is issued beside it only for its progress stream, which hears `qr.done` when the
 *   payment notification is applied. 「在手机上支付」 opens the cashier on this device.
 * - review / approved / closed: where it stands; the materials once approved.
 *
 * The live re-reads are plain fetches: logging in on the phone ends this browser's session
 * (one active device per family), which must not take the page away from the code. */

import { api, csrfToken, LOGIN_URL, showFailure } from "./lib/api.js";
import {
  $,
  CODE,
  el,
  row,
  setBusy,
  countdown,
  clearErrors,
  showErrors,
  toast,
  words,
} from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { nodes as consultNodes } from "./lib/consult.js";
import { qrProgress } from "./lib/qr-progress.js";

const root = $("lease");
const id = Number.parseInt(root.dataset.leaseId, 10);
const base = `/api/v1/lease/${id}`;
const SECTIONS = ["info", "qr", "review", "approved", "closed"];
const RECHECK_TRIES = 4;
const RECHECK_MS = 1000;

/* The QR stages: what the code is for, the phone's progress, when the stage is done. */
const QR_STAGES = {
  face: {
    title: "人脸识别",
    instruction: "请使用手机微信扫描二维码完成人脸识别",
    here: (lease) => `/h5/signing/${lease.agreement.id}/sign/?until=face`,
    from: 0,
    items: [
      ["scanned", "已扫码"],
      [1, "查看电子合同"],
      [3, "核对实名信息"],
      [4, "人脸识别通过"],
    ],
    finished: (p) => p.step >= 4,
  },
  contract: {
    title: "签订合同",
    instruction: "请使用手机微信扫描二维码阅读并签署合同",
    here: (lease) => `/h5/signing/${lease.agreement.id}/sign/`,
    from: 4,
    items: [
      ["scanned", "已扫码"],
      [5, "阅读并确认合同"],
      [6, "手写签名"],
      [7, "短信验证并提交"],
    ],
    finished: (p) => p.step >= 7,
  },
  deposit: {
    title: "押金缴纳",
    instruction: "请使用手机微信扫描二维码支付押金",
    here: null, // the order's pay_url, once made
    from: 7,
    items: [["done", "微信支付押金"]], // WeChat does not tell us of a scan, only of the payment
    finished: (p) => p.done,
  },
};

let lease = null;
let shown = null; // the stage the page shows
let qr = null; // the code and progress of the shown QR stage
let checking = false;
let sessionLost = false;

/* ------------------------------------------------------------------ helpers */

function unitName(unit) {
  return unit.label; // named from the unit, never from the selection round
}

/* GET the lease without api(): a refused read (the session ended when the applicant logged
 * in on the phone) keeps the page and says so. Null when it could not be read. */
async function readLease() {
  let response;
  try {
    response = await fetch(`${base}/`, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
  } catch {
    return null;
  }
  if (response.status === 401 || response.status === 403) {
    sessionLost = true;
    qrNotice(
      "本机登录已失效（同一账号在其他设备登录后，本机会自动退出）。手机端办理不受影响；如需在本机继续，请重新登录。",
      true,
    );
    return null;
  }
  if (!response.ok) return null;
  return response.json();
}

function qrNotice(text, withLogin = false) {
  const node = $("qr-notice");
  node.replaceChildren();
  if (text) node.append(text);
  if (withLogin) {
    const next = window.location.pathname;
    node.append(
      " ",
      el("a", { class: "weui-link", href: `${LOGIN_URL}?next=${encodeURIComponent(next)}`, text: "重新登录" }),
    );
  }
  node.hidden = !text;
}

/* ------------------------------------------------------------------ the whole page */

function renderStepper() {
  const stages = lease.stages.map((s) => s.stage);
  let current = stages.indexOf(lease.stage);
  if (lease.stage === "approved") current = stages.length; // all done
  $("stepper").replaceChildren(
    ...lease.stages.map((s, index) =>
      el(
        "li",
        {
          class: [
            "anju-flowbar__item",
            index < current ? "anju-flowbar__item_done" : "",
            index === current ? "anju-flowbar__item_on" : "",
          ]
            .filter(Boolean)
            .join(" "),
          "aria-current": index === current ? "step" : null,
          dataset: { stage: s.stage },
        },
        // The guide's last step reads 「待审核」 until the review is done.
        words(lease.stage === "approved" && s.stage === "review" ? "审核通过" : s.label),
      ),
    ),
  );
  $("stepper").hidden = lease.stage === "closed";
}

function renderSummary() {
  const rows = [row("承租住房", unitName(lease.unit)), row("月租金", `${lease.monthly_rent}元`)];
  rows.push(row("押金", `${lease.deposit}元`));
  const payment = lease.payment;
  if (payment && payment.status === "paid") {
    if (payment.paid_at) rows.push(row("押金缴纳时间", dateTime(payment.paid_at)));
    if (payment.receipt_no) rows.push(row("收据编号", payment.receipt_no));
  }
  if (lease.submitted_at) rows.push(row("提交时间", dateTime(lease.submitted_at)));
  if (lease.agreement.sealed_at) rows.push(row("审核通过时间", dateTime(lease.agreement.sealed_at)));
  if (lease.agreement.verification_code && lease.agreement.status !== "pending") {
    rows.push(row("合同验证码", lease.agreement.verification_code, CODE));
  }
  $("summary-rows").replaceChildren(...rows);
  $("summary").hidden = !["review", "approved", "closed"].includes(lease.stage);
}

function render() {
  $("loading").hidden = true;
  $("lease-title").textContent = lease.agreement.title;
  $("lease-unit").textContent = `${unitName(lease.unit)}\u3000${lease.stage_label}`;
  renderStepper();
  renderSummary();
  const reason = lease.agreement.reject_reason;
  $("reject-bar").textContent = reason ? `上次签约申请已被退回：${reason}。请重新办理。` : "";
  $("reject-bar").hidden = !(reason && lease.agreement.status === "pending");

  const section = QR_STAGES[lease.stage] ? "qr" : lease.stage;
  if (shown !== lease.stage) {
    const previous = shown;
    shown = lease.stage;
    for (const name of SECTIONS) $(`stage-${name}`).hidden = name !== section;
    stopLive();
    if (previous !== null) window.scrollTo(0, 0);
    ENTER[section](lease.stage);
  } else if (section === "info") {
    fillInfo();
  }
}

async function load() {
  try {
    lease = await api("GET", `${base}/`);
  } catch (failure) {
    $("loading").textContent = "加载失败，请刷新页面重试";
    await showFailure(failure);
    return;
  }
  render();
}

/* ------------------------------------------------------------------ 完善承租信息 */

const bankForm = $("bank-form");
const bankSelect = $("bank");
const holder = $("account-holder");
const account = $("account-number");
let banksLoaded = null;

function loadBanks() {
  if (!banksLoaded) {
    banksLoaded = api("GET", "/api/v1/lease/banks/").then((banks) => {
      bankSelect.append(...banks.map((b) => el("option", { value: b.code, text: b.name })));
    });
    banksLoaded.catch(() => {
      banksLoaded = null;
    });
  }
  return banksLoaded;
}

function fillInfo() {
  const unit = lease.unit;
  const rows = [
    row("房源", unitName(unit), { id: "unit-label" }),
    row("户型", unit.layout),
    row("建筑面积", `${unit.area}㎡`),
    row("楼层", `${unit.floor}层`),
    row("朝向", unit.orientation),
    row("月租金", `${lease.monthly_rent}元`, { id: "unit-rent" }),
    row("押金", `${lease.deposit}元`, { id: "unit-deposit" }),
    row("租赁期限", `${lease.lease_years}年`),
    row("签约截止", dateTime(lease.agreement.window_ends_at)),
  ];
  $("unit-rows").replaceChildren(...rows);
  $("applicant-name").textContent = lease.name;
  $("mobile-masked").textContent = lease.mobile_masked;
  for (const side of ["front", "back"]) showPhoto(side, lease.photos[side]);
}

/* The details stored before (a staff rejection starts a new attempt, to be confirmed again)
 * are filled in: the account as the masked number, which the server takes as "keep the
 * stored account"; typing replaces it. */
async function enterInfo() {
  fillInfo();
  holder.value = lease.bank.account_holder || lease.name;
  if (!account.value) account.value = lease.bank.account_masked || "";
  try {
    await loadBanks();
  } catch (failure) {
    await showFailure(failure);
    return;
  }
  if (lease.bank.bank) bankSelect.value = lease.bank.bank;
}

/* 修改手机号: a code to the new number, then the code back. */
const mobileForm = $("mobile-form");
const mobileEdit = $("mobile-edit");
const mobileSend = $("mobile-send");
const mobileSubmit = $("mobile-submit");
const newMobile = $("new-mobile");
const mobileCode = $("mobile-code");
let stopCountdown = null;

function mobileFailure(failure) {
  if (failure.redirecting) return;
  showErrors(mobileForm, failure);
  $("mobile-error").textContent = (failure.error && failure.error.message) || "系统繁忙，请稍后再试";
  $("mobile-error").hidden = false;
}

function mobileClear() {
  clearErrors(mobileForm);
  $("mobile-error").hidden = true;
}

function mobileToggle(open) {
  mobileForm.hidden = !open;
  mobileEdit.setAttribute("aria-expanded", String(open));
  mobileEdit.hidden = open;
  if (open) {
    newMobile.focus();
  } else {
    mobileClear();
    mobileForm.reset();
    $("mobile-info").hidden = true;
  }
}

mobileEdit.addEventListener("click", () => mobileToggle(true));
$("mobile-cancel").addEventListener("click", () => mobileToggle(false));

mobileSend.addEventListener("click", async () => {
  if (mobileSend.disabled) return;
  mobileClear();
  setBusy(mobileSend, true, "发送中…");
  try {
    const data = await api("POST", `${base}/mobile/code/`, { mobile: newMobile.value.trim() });
    setBusy(mobileSend, false);
    $("mobile-info").textContent = "验证码已发送至新手机号码，请注意查收。";
    $("mobile-info").hidden = false;
    stopCountdown = countdown(mobileSend, data.resend_after || 60);
    mobileCode.focus();
  } catch (failure) {
    setBusy(mobileSend, false);
    if (failure.retryAfter) stopCountdown = countdown(mobileSend, failure.retryAfter);
    mobileFailure(failure);
  }
});

mobileForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (mobileSubmit.disabled) return;
  mobileClear();
  setBusy(mobileSubmit, true, "正在提交…");
  try {
    lease = await api("POST", `${base}/mobile/`, {
      mobile: newMobile.value.trim(),
      code: mobileCode.value.trim(),
    });
    setBusy(mobileSubmit, false);
    if (stopCountdown) stopCountdown();
    mobileToggle(false);
    toast("手机号码已修改");
    render();
  } catch (failure) {
    setBusy(mobileSubmit, false);
    mobileFailure(failure);
  }
});

/* 银行卡正面 / 反面: uploaded as soon as chosen; the preview is the stored photo. */
function showPhoto(side, photo) {
  const img = $(`photo-${side}-preview`);
  const box = img.closest(".anju-photo");
  if (photo) {
    const src = `${base}/photos/${side}/?v=${encodeURIComponent(photo.sha256)}`;
    if (img.getAttribute("src") !== src) img.src = src;
    img.hidden = false;
    box.classList.add("anju-photo_done");
    $(`photo-${side}-state`).textContent = "已上传，点击可重新上传";
  } else {
    img.hidden = true;
    img.removeAttribute("src");
    box.classList.remove("anju-photo_done");
    $(`photo-${side}-state`).textContent = "点击上传";
  }
}

async function upload(side, file) {
  const state = $(`photo-${side}-state`);
  const box = state.closest(".anju-photo");
  const data = new FormData();
  data.append("file", file);
  clearErrors(bankForm);
  box.classList.add("anju-photo_busy");
  state.textContent = "正在上传…";
  let response;
  let body = null;
  try {
    response = await fetch(`${base}/photos/${side}/`, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    });
    body = await response.json().catch(() => null);
  } catch {
    response = null;
  } finally {
    box.classList.remove("anju-photo_busy");
  }
  if (response && response.ok && body) {
    lease.photos[side] = { sha256: body.sha256 };
    showPhoto(side, lease.photos[side]);
    return;
  }
  showPhoto(side, lease.photos[side]);
  const failure =
    body && body.error
      ? { ...body, status: response.status }
      : {
          error: {
            code: "upload_failed",
            message: response ? "照片上传失败，请重试" : "网络连接失败，请检查网络后重试",
            fields: {},
          },
          status: response ? response.status : 0,
        };
  await bankRefused(failure);
}

/* A refused photo or bank form: a lost login or a lease moved on elsewhere (409: reload it)
 * as a dialog, anything else under the form's fields. */
async function bankRefused(failure) {
  if (failure.status === 401 || failure.status === 409) {
    await showFailure(failure);
    if (failure.status === 409) await load();
    return;
  }
  showErrors(bankForm, failure);
}

for (const input of document.querySelectorAll('input[type="file"][data-side]')) {
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (file) upload(input.dataset.side, file);
    input.value = ""; // the same file again is a new choice
  });
}

account.addEventListener("focus", () => {
  if (account.value.includes("*")) account.select(); // the stored account: typing replaces it
});

/* What the form still lacks, each under its own field and all at once: the server checks the
 * same (its fields, then the photos), but one refusal at a time, a round trip each. */
function missingInfo() {
  const fields = {};
  if (!bankSelect.value) fields.bank = ["请选择托收银行"];
  if (!account.value.trim()) fields.account_number = ["请输入银行卡号"];
  if (!holder.value.trim()) fields.account_holder = ["请输入账户名"];
  const sides = [
    ["front", "正面"],
    ["back", "反面"],
  ].filter(([side]) => !lease.photos[side]);
  if (sides.length) fields.file = [`请上传银行卡${sides.map(([, name]) => name).join("和")}照片`];
  if (!Object.keys(fields).length) return null;
  return { error: { code: "invalid_input", message: "请补全以上信息后再提交", fields } };
}

bankForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("bank-submit");
  if (button.disabled) return;
  clearErrors(bankForm);
  const missing = missingInfo();
  if (missing) {
    showErrors(bankForm, missing);
    return;
  }
  setBusy(button, true, "正在提交…");
  try {
    lease = await api("POST", `${base}/bank/`, {
      bank: bankSelect.value,
      account_number: account.value.trim(),
      account_holder: holder.value.trim(),
    });
    setBusy(button, false);
    render();
  } catch (failure) {
    setBusy(button, false);
    if (failure.redirecting) return;
    await bankRefused(failure);
  }
});

/* ------------------------------------------------------------------ the QR stages */

/* The phone finished the stage (or the page polls): read the lease again and move on. The
 * event may come a moment before the read shows it; try a few times. */
async function checkStage() {
  if (checking || sessionLost) return;
  checking = true;
  try {
    for (let tries = 0; tries < RECHECK_TRIES; tries += 1) {
      const fresh = await readLease();
      if (!fresh) return;
      lease = fresh;
      if (fresh.stage !== shown) {
        render();
        return;
      }
      if (!qr) return;
      qr.update({ step: fresh.agreement.step });
      if (!QR_STAGES[shown].finished(qr.progress)) return;
      await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
    }
  } finally {
    checking = false;
  }
}

function stopLive() {
  if (qr) {
    qr.stop();
    qr = null;
  }
}

/* 押金缴纳's code: the payment order's code_url (the same order each time until it is paid or
 * closed), with the stage's ticket for the progress stream only. */
async function depositIssue() {
  const [ticket, order] = await Promise.all([api("POST", `${base}/qr/`), api("POST", `${base}/deposit/`)]);
  // At 200 % text the sign may go above the figure; the figure itself never breaks.
  $("deposit-amount").replaceChildren(el("small", { text: "¥" }), el("wbr"), order.amount);
  $("deposit-expiry").textContent = `请于 ${dateTime(order.expires_at)} 前完成支付，逾期订单将关闭`;
  $("continue-here").href = order.pay_url;
  $("deposit-info").hidden = false;
  $("here").hidden = false;
  return { ...ticket, png_base64: order.png_base64 };
}

function enterQr(stage) {
  const conf = QR_STAGES[stage];
  const deposit = stage === "deposit";
  $("qr-title").textContent = conf.title;
  $("qr-instruction").textContent = conf.instruction;
  $("qr-img").alt = deposit ? "押金支付二维码" : "签约二维码";
  // A payment code has no 识别码, and it lasts until the order closes (#deposit-expiry), not
  // the ticket's time behind it.
  $("qr-code-line").hidden = deposit;
  $("qr-deadline").hidden = deposit;
  $("deposit-info").hidden = true;
  $("continue-here").textContent = deposit ? "在手机上支付" : "在本机继续";
  if (deposit) {
    $("here").hidden = true; // until the order's pay_url is known
  } else {
    $("here").hidden = false;
    $("continue-here").href = conf.here(lease);
  }
  qrNotice("");
  qr = qrProgress({
    issue: deposit ? depositIssue : () => api("POST", `${base}/qr/`),
    items: conf.items,
    from: conf.from,
    step: lease.agreement.step,
    finished: conf.finished,
    onProgress(progress, { polling }) {
      // Polling instead of a socket: the lease is read at each turn as well.
      if (polling || conf.finished(progress)) checkStage();
    },
    onIssueFailure(failure) {
      if (failure.status !== 409) return false;
      load(); // the stage moved on meanwhile
      return true;
    },
  });
}

$("qr-retry").addEventListener("click", () => {
  if (qr) qr.renew();
});

/* ------------------------------------------------------------------ the last stages */

function enterApproved() {
  const contract = $("download-contract");
  const receipt = $("download-receipt");
  contract.hidden = !lease.materials.contract;
  receipt.hidden = !lease.materials.receipt;
  contract.href = `/api/v1/signing/agreements/${lease.agreement.id}/document/?download=1`;
  contract.setAttribute("download", `lease-${lease.agreement.verification_code || lease.id}.pdf`);
  receipt.href = `${base}/receipt/?download=1`;
  receipt.setAttribute("download", `deposit-receipt-${lease.id}.pdf`);
}

function enterClosed() {
  const status = lease.agreement.status;
  const texts = {
    void: ["签约已作废", "签约期限已过，本次签约已作废。如有疑问，"],
    abandoned: ["您已放弃签约", "您已提交《放弃签约声明书》，本次签约已结束。"],
  };
  const [title, desc] = texts[status] || [lease.stage_label, lease.agreement.status_label];
  $("closed-title").textContent = title;
  if (status === "void" && lease.help) {
    $("closed-desc").replaceChildren(desc, ...consultNodes(lease.help), "。");
  } else {
    $("closed-desc").textContent = status === "void" ? `${desc}请拨打咨询电话。` : desc;
  }
}

const ENTER = {
  info: enterInfo,
  qr: enterQr,
  review: () => {},
  approved: enterApproved,
  closed: enterClosed,
};

load();
