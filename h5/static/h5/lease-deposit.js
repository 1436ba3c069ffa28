/* 押金缴纳 on the phone (the deposit QR code's page, or the lease page's 「在本机继续」): the
 * amount, 「确认支付」 → the payment provider's cashier (the API's pay_url). Back from the
 * cashier with ?out_trade_no=…, the page asks the API for the result (POST …/deposit/refresh/,
 * which asks the provider when its notification has not come yet) a few times, then offers
 * 「刷新」. Paid: the application is submitted. Whether the deposit may be paid now is the
 * API's `stage`. (A phone that paid the desktop's payment code without logging in gets
 * lease/paid_elsewhere.html instead of this page: h5/lease_views.py.) */

import { api, showFailure } from "./lib/api.js";
import { $, el, row, setBusy } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";

const id = Number.parseInt($("deposit").dataset.leaseId, 10);
const base = `/api/v1/lease/${id}`;
const SECTIONS = ["pay", "wait", "done", "other"];
const TRIES = 5;
const RETRY_MS = 1500;

let lease = null;

function section(name) {
  $("loading").hidden = true;
  for (const one of SECTIONS) $(`deposit-${one}`).hidden = one !== name;
}

function paid() {
  return Boolean(lease.payment && lease.payment.status === "paid");
}

function showDone() {
  const payment = lease.payment;
  const rows = [row("承租住房", `${lease.unit.label}`), row("押金", `${lease.deposit}元`)];
  if (payment.paid_at) rows.push(row("支付时间", dateTime(payment.paid_at)));
  if (payment.receipt_no) rows.push(row("收据编号", payment.receipt_no));
  $("done-rows").replaceChildren(...rows);
  section("done");
}

function showPay() {
  $("deposit-amount").replaceChildren(el("small", { text: "¥" }), lease.deposit);
  $("deposit-unit").textContent = `${lease.unit.label}`;
  $("deposit-rows").replaceChildren(
    row("承租人", lease.name),
    row("月租金", `${lease.monthly_rent}元`),
    row("押金", `${lease.deposit}元`),
    row("缴纳截止", dateTime(lease.agreement.window_ends_at)),
  );
  section("pay");
}

function showOther() {
  const texts = {
    info: ["请先完善承租信息", "请在电脑端「网上签约」完成承租信息后，再缴纳押金。"],
    face: ["请先完成人脸识别", "请在电脑端「网上签约」扫码完成人脸识别后，再缴纳押金。"],
    contract: ["请先签订合同", "请在电脑端「网上签约」扫码签订合同后，再缴纳押金。"],
    closed: ["签约已结束", lease.agreement.status_label],
  };
  const [title, desc] = texts[lease.stage] || [lease.stage_label, ""];
  $("other-title").textContent = title;
  $("other-desc").textContent = desc;
  section("other");
}

function show() {
  if (paid()) showDone();
  else if (lease.stage === "deposit") showPay();
  else showOther();
}

/* ------------------------------------------------------------------ 确认支付 */

const payButton = $("pay-btn");

async function pay(button) {
  if (button.disabled) return;
  setBusy(button, true, "正在打开支付…");
  try {
    const order = await api("POST", `${base}/deposit/`);
    window.location.assign(order.pay_url);
  } catch (failure) {
    setBusy(button, false);
    await showFailure(failure);
    if (failure.status === 409) await load();
  }
}

payButton.addEventListener("click", () => pay(payButton));
$("repay-btn").addEventListener("click", (event) => pay(event.currentTarget));

/* ------------------------------------------------------------------ the result */

/* Back from the cashier: ?out_trade_no=… */
function returned() {
  return new URLSearchParams(window.location.search).has("out_trade_no");
}

function forgetReturn() {
  const url = new URL(window.location.href);
  url.searchParams.delete("out_trade_no");
  window.history.replaceState(null, "", url.pathname + url.search);
}

async function confirmPaid() {
  const refresh = $("refresh-btn");
  refresh.hidden = true;
  $("repay-btn").hidden = true;
  $("wait-title").textContent = "正在确认支付结果…";
  $("wait-desc").textContent = "";
  section("wait");
  for (let tries = 0; tries < TRIES; tries += 1) {
    if (tries) await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    try {
      lease = await api("POST", `${base}/deposit/refresh/`);
    } catch (failure) {
      if (failure.redirecting) return;
      if (failure.status === 401 || failure.status === 404) {
        await showFailure(failure);
        return;
      }
      continue; // 503 from the provider, network: try again
    }
    if (paid()) {
      forgetReturn();
      showDone();
      return;
    }
    if (lease.stage !== "deposit") break;
  }
  if (lease && lease.stage !== "deposit" && !paid()) {
    forgetReturn();
    showOther();
    return;
  }
  $("wait-title").textContent = "暂未查询到支付结果";
  $("wait-desc").textContent =
    "如您已完成支付，请稍后点击「刷新」；如未支付，可点击「重新支付」。同一笔押金不会重复扣款。";
  refresh.hidden = false;
  $("repay-btn").hidden = false;
}

$("refresh-btn").addEventListener("click", confirmPaid);

/* This phone may not go on (its signing session was taken over or expired): say why. */
function sessionEnded(message) {
  $("other-title").textContent = "本机已停止签约";
  $("other-desc").textContent = message;
  section("other");
}

async function load() {
  try {
    lease = await api("GET", `${base}/`);
  } catch (failure) {
    const code = failure.error && failure.error.code;
    if (code === "signing_session_ended" || code === "signing_session_taken_over") {
      sessionEnded(failure.error.message);
      return;
    }
    $("loading").textContent = "加载失败，请刷新页面重试";
    await showFailure(failure);
    return;
  }
  if (lease.session && !lease.session.verified) {
    // A phone that has not passed this attempt's face check proves itself first.
    window.location.replace(`/h5/signing/${lease.agreement.id}/sign/`);
    return;
  }
  const back = returned();
  if (back && !paid() && lease.stage === "deposit") {
    confirmPaid();
    return;
  }
  if (back) forgetReturn(); // the notification came first: nothing left to ask
  show();
}

load();
