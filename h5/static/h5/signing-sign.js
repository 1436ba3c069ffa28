/* The phone flow of guide 001, one step at a time as the agreement's `step` says
 * (GET /api/v1/signing/agreements/<id>/): 电子合同 「下一步」 → consent 「开始」 → 实名信息
 * 「确定」 → 人脸识别 → 协议全文 「阅读并确认」 → one handwritten character per box 「确定」 →
 * SMS code 「提交」 → 已提交. Each action is one POST to …/steps/<name>/; the server accepts
 * only the next step, and a refusal is shown with its own message (then the page reloads the
 * agreement to show where it really stands). */

import { api, showFailure } from "./lib/api.js";
import { dialog } from "./lib/dialogs.js";
import { clearErrors, countdown, el, paragraphs, setBusy, showErrors, toast } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { agreementId } from "./lib/signing.js";
import { boxes as signatureBoxes } from "./signing-pad.js";

const id = agreementId();
const base = `/api/v1/signing/agreements/${id}`;
const $ = (sel) => document.getElementById(sel);
const SECTIONS = ["contract", "consent", "identity", "face", "read", "signature", "sms", "done"];
const PHASE_OF_STEP = [0, 1, 1, 1, 2, 2, 3, 4]; // step → the flow bar's phase
const FACE_RETRIES = 5;
const FACE_RETRY_MS = 2000;

/* ?until=face (the lease's 人脸识别 QR code): stop once the face check has passed; the
 * desktop then goes on to the contract. Remembered for this tab across the face
 * provider's round trip, which comes back with ?face_order= only. */
const untilFaceParam = (() => {
  const query = new URLSearchParams(window.location.search);
  const key = `anju.signing.until.${id}`;
  try {
    if (query.has("until")) window.sessionStorage.setItem(key, query.get("until"));
    else if (!query.has("face_order")) window.sessionStorage.removeItem(key);
    return window.sessionStorage.getItem(key) === "face";
  } catch {
    return query.get("until") === "face";
  }
})();

let agreement = null;
let ended = false; // this phone's signing session ended (taken over, expired)
const consents = {}; // kind → {title, version, body}
let entered = null; // the section whose `enter` ran for the current agreement load
let readFrom = 0;
let boxes = null;

/* ------------------------------------------------------------------ helpers */

/* The phone's signing session (opened from a QR code, no login), or null for a login. */
const session = () => (agreement && agreement.session) || null;
const untilFace = () => untilFaceParam || (session() && session().purpose === "face");
const SESSION_ENDED = new Set(["signing_session_ended", "signing_session_taken_over"]);

/* This phone may not go on: say why, plainly, and stop. */
function sessionEnded(message) {
  ended = true;
  $("loading").hidden = true;
  for (const name of [...SECTIONS, "closed"]) $(`step-${name}`).hidden = name !== "closed";
  $("flowbar").hidden = true;
  $("abandon-link").hidden = true;
  $("step-closed").querySelector(".weui-icon_msg").className = "weui-icon-warn weui-icon_msg";
  $("closed-title").textContent = "本机已停止签约";
  $("closed-desc").textContent = message;
  const back = $("closed-back");
  if (back) back.hidden = !!session() || !back.dataset.loggedIn;
  if (watch) watch.close();
}

/* A takeover is told at once: the phone listens to its ticket's progress stream. */
let watch = null;
function watchTakeover() {
  const own = session();
  if (!own || watch || ended) return;
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  watch = new WebSocket(`${proto}//${window.location.host}/ws/qr/${encodeURIComponent(own.stream_token)}/`);
  watch.addEventListener("message", (message) => {
    let frame = null;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.type !== "events" || frame.stream !== own.stream) return;
    for (const event of frame.events || []) {
      if (event.type === "qr.taken_over" && event.data && event.data.ended_session === own.id) {
        sessionEnded("该签约二维码已在另一部手机上打开，本机已停止签约。如非本人操作，请立即联系工作人员。");
      }
    }
  });
}

async function step(name, body, button, busyLabel) {
  if (button) setBusy(button, true, busyLabel);
  try {
    const result = await api("POST", `${base}/steps/${name}/`, body);
    Object.assign(agreement, result);
    if (button) setBusy(button, false);
    return true;
  } catch (failure) {
    if (button) setBusy(button, false);
    await refused(failure);
    return false;
  }
}

/* A refusal: say why; when the server says the step is not the one the page shows,
 * reload the agreement to show the real one. */
async function refused(failure) {
  const code = failure && failure.error && failure.error.code;
  if (SESSION_ENDED.has(code)) {
    sessionEnded(failure.error.message);
    return;
  }
  await showFailure(failure);
  if (
    code === "step_out_of_order" ||
    code === "agreement_not_pending" ||
    code === "signing_closed" ||
    code === "signing_not_open"
  ) {
    await load();
  }
}

async function consent(kind) {
  if (!consents[kind]) consents[kind] = await api("GET", `/api/v1/signing/consents/${kind}/`);
  return consents[kind];
}

function toggleWith(checkbox, button) {
  const sync = () => {
    button.disabled = !checkbox.checked;
    button.classList.toggle("weui-btn_disabled", !checkbox.checked);
  };
  checkbox.addEventListener("change", sync);
  sync();
  return sync;
}

/* ------------------------------------------------------------------ showing a step */

function fill() {
  const values = {
    title: agreement.title,
    real_name: agreement.real_name,
    id_number_masked: agreement.id_number_masked,
    deadline: dateTime(agreement.window_ends_at),
  };
  for (const node of document.querySelectorAll("[data-fill]")) {
    node.textContent = values[node.dataset.fill] || "";
  }
  const reject = $("reject-bar");
  reject.textContent = agreement.reject_reason ? `上次签署已被退回：${agreement.reject_reason}。请重新签署。` : "";
  reject.hidden = !agreement.reject_reason;
}

function closedText() {
  switch (agreement.status) {
    case "signed":
      return ["协议已签字", "已提交，等待工作人员审核及盖章。"];
    case "sealed":
      return ["协议已盖章", "可在「网上签约」查看、下载、打印协议。"];
    case "void":
      return ["协议已作废", "签约期限已过，本协议已作废。"];
    case "abandoned":
      return ["您已放弃签约", "您已提交《放弃签约声明书》，本协议不再签署。"];
    default:
      return [agreement.status_label, ""];
  }
}

function show() {
  $("loading").hidden = true;
  let section;
  if (ended) return;
  const own = session();
  const reverify = Boolean(own && own.verify_needed);
  const faceDone =
    untilFace() && agreement.status === "pending" && agreement.step >= 4 && !reverify; // FACE_VERIFIED
  $("step-closed").querySelector(".weui-icon_msg").className =
    `${faceDone ? "weui-icon-success" : "weui-icon-info"} weui-icon_msg`;
  const back = $("closed-back");
  back.href = "/h5/signing/";
  back.textContent = "返回网上签约";
  if (faceDone && own) {
    // A phone that scanned the face code: its session covers the face check only.
    section = "closed";
    $("closed-title").textContent = "人脸识别已完成，请回到电脑端继续";
    $("closed-desc").textContent = "电脑端页面将自动进入「签订合同」。";
  } else if (faceDone) {
    // The applicant's own login (「在本机继续」 on a phone, or a logged-in phone that
    // scanned): the contract can be signed right here, no computer needed.
    section = "closed";
    $("closed-title").textContent = "人脸识别已完成";
    $("closed-desc").textContent = "请在本机继续签订合同，或回到电脑端扫描「签订合同」二维码。";
    back.href = `/h5/signing/${id}/sign/`;
    back.textContent = "在本机继续签订合同";
  } else if (reverify) {
    // A later stage's code on a phone that has not passed this attempt's face check.
    section = "face";
    $("face-desc").textContent = "为确认是主申请人本人在办理，请在本机完成人脸识别后继续。";
  } else if (own && own.purpose === "deposit" && agreement.lease) {
    window.location.replace(`/h5/lease/${agreement.lease}/deposit/`);
    return;
  } else if (agreement.status === "pending") {
    section = SECTIONS[Math.min(agreement.step, SECTIONS.length - 1)];
  } else if (agreement.status === "signed" && agreement.step >= 7) {
    section = "done";
    if (agreement.lease) {
      // A lease goes on to the deposit (押金缴纳) before it is submitted for review.
      $("done-title").textContent = "合同已签署，请继续缴纳押金";
      const next = $("done-next");
      if (own) {
        $("done-desc").textContent = "电脑端页面将自动进入「押金缴纳」，请使用本机扫描电脑端的押金缴纳二维码。";
        next.hidden = true;
      } else {
        $("done-desc").textContent = "请回到电脑端扫描「押金缴纳」二维码，或在本机继续缴纳押金。";
        next.href = `/h5/lease/${agreement.lease}/`;
        next.textContent = "继续缴纳押金";
      }
    } else if (own) {
      $("done-desc").textContent = "电脑端页面已同步显示签约进度。审核通过并盖章后将以短信通知您。";
      $("done-next").hidden = true;
    }
  } else {
    section = "closed";
    const [title, desc] = closedText();
    $("closed-title").textContent = title;
    $("closed-desc").textContent = desc;
  }
  for (const name of [...SECTIONS, "closed"]) $(`step-${name}`).hidden = name !== section;
  $("abandon-link").hidden = agreement.status !== "pending" || faceDone || !!own;

  const bar = $("flowbar");
  bar.hidden = section === "closed";
  const phase = section === "done" ? 4 : PHASE_OF_STEP[agreement.step] || 0;
  bar.querySelectorAll(".anju-flowbar__item").forEach((item, index) => {
    item.classList.toggle("anju-flowbar__item_done", index < phase);
    item.classList.toggle("anju-flowbar__item_on", index === phase);
    if (index === phase) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  });

  if (entered !== section) {
    entered = section;
    window.scrollTo(0, 0);
    const enter = ENTER[section];
    if (enter) enter();
  }
}

async function load() {
  try {
    agreement = await api("GET", `${base}/`);
  } catch (failure) {
    const code = failure && failure.error && failure.error.code;
    if (SESSION_ENDED.has(code)) {
      sessionEnded(failure.error.message);
      return;
    }
    $("loading").textContent = "加载失败，请刷新页面重试";
    await showFailure(failure);
    return;
  }
  entered = null;
  fill();
  show();
  watchTakeover();
}

/* ------------------------------------------------------------------ 电子合同 */

$("contract-next").addEventListener("click", async (event) => {
  if (await step("contract-viewed", undefined, event.currentTarget, "请稍候…")) show();
});

/* ------------------------------------------------------------------ consents */

for (const link of document.querySelectorAll("[data-consent]")) {
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    event.stopPropagation();
    try {
      const text = await consent(link.dataset.consent);
      await dialog({
        title: `《${text.title}》`,
        body: el("div", { class: "anju-consent-body" }, paragraphs(text.body)),
        buttons: [{ label: "我知道了", value: true }],
      });
    } catch (failure) {
      await showFailure(failure);
    }
  });
}

async function versions(kinds) {
  const out = {};
  for (const kind of kinds) out[kind] = (await consent(kind)).version;
  return out;
}

async function consentStep(name, kinds, checkbox, button) {
  let chosen;
  try {
    chosen = await versions(kinds);
  } catch (failure) {
    await showFailure(failure);
    return;
  }
  setBusy(button, true, "请稍候…");
  try {
    Object.assign(agreement, await api("POST", `${base}/steps/${name}/`, { versions: chosen }));
    setBusy(button, false);
    show();
  } catch (failure) {
    setBusy(button, false);
    if (failure.error && failure.error.code === "consent_outdated") {
      // A newer text: read it again and tick again.
      for (const kind of kinds) delete consents[kind];
      checkbox.checked = false;
      checkbox.dispatchEvent(new Event("change"));
    }
    await refused(failure);
  }
}

const consentBox = $("consent-ecert");
const consentStart = $("consent-start");
toggleWith(consentBox, consentStart);
consentStart.addEventListener("click", () => {
  if (!consentBox.checked) return;
  consentStep("ecert-consent", ["ecert_service", "privacy"], consentBox, consentStart);
});

const identityBox = $("consent-identity");
const identityOk = $("identity-ok");
toggleWith(identityBox, identityOk);
identityOk.addEventListener("click", () => {
  if (!identityBox.checked) return;
  consentStep("identity-confirm", ["privacy", "biometric"], identityBox, identityOk);
});

/* ------------------------------------------------------------------ 人脸识别 */

const faceStart = $("face-start");
const faceDesc = $("face-desc");
const FACE_DESC = faceDesc.textContent;

function forgetFaceOrder() {
  const url = new URL(window.location.href);
  url.searchParams.delete("face_order");
  url.searchParams.delete("token"); // the provider's own id, appended on the way back
  window.history.replaceState(null, "", url.pathname + url.search);
}

faceStart.addEventListener("click", async () => {
  setBusy(faceStart, true, "正在打开人脸识别…");
  try {
    const data = await api("POST", `${base}/steps/face-start/`);
    window.location.assign(data.redirect_url);
  } catch (failure) {
    setBusy(faceStart, false);
    await refused(failure);
  }
});

/* Back from the provider: ask the server for this order's result (the provider may tell
 * it a moment later than the phone comes back). */
async function faceComplete(orderId, providerToken) {
  faceStart.hidden = true;
  faceDesc.textContent = "正在确认人脸识别结果，请稍候…";
  for (let tries = 0; ; tries += 1) {
    try {
      Object.assign(
        agreement,
        await api("POST", `${base}/steps/face-complete/`, {
          order_id: orderId,
          token: providerToken || "",
        }),
      );
      forgetFaceOrder();
      toast("人脸识别通过");
      if (session()) await load(); // now verified on this phone: the text, the amounts
      else show();
      return;
    } catch (failure) {
      const code = failure.error && failure.error.code;
      if (code === "face_result_pending" && tries < FACE_RETRIES) {
        await new Promise((resolve) => setTimeout(resolve, FACE_RETRY_MS));
        continue;
      }
      forgetFaceOrder();
      faceStart.hidden = false;
      faceStart.textContent = "重新人脸识别";
      faceDesc.textContent = FACE_DESC;
      await refused(failure);
      return;
    }
  }
}

function enterFace() {
  const query = new URLSearchParams(window.location.search);
  const orderId = query.get("face_order");
  if (orderId) faceComplete(orderId, query.get("token"));
}

/* ------------------------------------------------------------------ 阅读协议 */

const reader = $("reader");
const readOk = $("read-ok");
const readerState = $("reader-state");
let readToEnd = false;

function checkRead() {
  if (readToEnd) return;
  if (reader.scrollTop + reader.clientHeight >= reader.scrollHeight - 8) {
    readToEnd = true;
    readOk.disabled = false;
    readOk.classList.remove("weui-btn_disabled");
    readerState.textContent = "已阅读至协议末尾";
    readerState.classList.add("anju-reader-state_done");
  }
}

function enterRead() {
  reader.replaceChildren(
    ...paragraphs(agreement.text, { heading: true }),
    el("p", { class: "anju-reader__end", text: "— 协议正文结束 —" }),
  );
  reader.scrollTop = 0;
  readToEnd = false;
  readOk.disabled = true;
  readOk.classList.add("weui-btn_disabled");
  readerState.textContent = "请阅读至协议末尾";
  readerState.classList.remove("anju-reader-state_done");
  readFrom = Date.now();
  checkRead(); // a text short enough to fit is read to its end at once
}

reader.addEventListener("scroll", checkRead, { passive: true });
readOk.addEventListener("click", async () => {
  if (!readToEnd) return;
  const seconds = Math.max(0, Math.floor((Date.now() - readFrom) / 1000));
  if (await step("read", { scrolled_to_end: true, reading_seconds: seconds }, readOk, "请稍候…")) {
    show();
  }
});

/* ------------------------------------------------------------------ 手写签名 */

const signatureOk = $("signature-ok");

function enterSignature() {
  if (boxes) {
    boxes.reset(agreement.signer_name, agreement.characters_drawn || []);
    return;
  }
  boxes = signatureBoxes({
    list: $("sigboxes"),
    chars: agreement.signer_name,
    drawn: agreement.characters_drawn || [],
    save: (index, payload) => api("PUT", `${base}/signature/${index}/`, payload),
    onChange(all) {
      signatureOk.disabled = !all;
      signatureOk.classList.toggle("weui-btn_disabled", !all);
    },
    onFailure: refused,
  });
}

signatureOk.addEventListener("click", async () => {
  if (await step("signature-complete", undefined, signatureOk, "请稍候…")) show();
});

/* ------------------------------------------------------------------ 短信验证并提交 */

const smsForm = $("sms-form");
const smsSend = $("sms-send");
const smsSubmit = $("sms-submit");
const smsInfo = $("sms-info");
const smsCode = $("sms-code");

smsSend.addEventListener("click", async () => {
  if (smsSend.disabled) return;
  clearErrors(smsForm);
  setBusy(smsSend, true, "发送中…");
  try {
    const data = await api("POST", `${base}/steps/sms-code/`);
    smsInfo.textContent = "验证码已发送至登记的手机号码，请注意查收。";
    smsInfo.hidden = false;
    countdown(smsSend, data.resend_after || 60);
    smsCode.focus();
  } catch (failure) {
    setBusy(smsSend, false);
    if (failure.redirecting) return;
    if (failure.retryAfter) countdown(smsSend, failure.retryAfter);
    if (failure.status === 409) await refused(failure);
    else showErrors(smsForm, failure);
  }
});

smsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (smsSubmit.disabled) return;
  clearErrors(smsForm);
  const code = smsCode.value.trim();
  if (!/^\d{6}$/.test(code)) {
    const message = "请输入6位数字验证码";
    showErrors(smsForm, { error: { code: "required", message, fields: { code: [message] } } });
    return;
  }
  setBusy(smsSubmit, true, "正在提交…");
  try {
    Object.assign(agreement, await api("POST", `${base}/steps/submit/`, { code }));
    show();
  } catch (failure) {
    setBusy(smsSubmit, false);
    if (failure.redirecting) return;
    if (failure.status === 409) await refused(failure);
    else showErrors(smsForm, failure);
  }
});

const ENTER = {
  face: enterFace,
  read: enterRead,
  signature: enterSignature,
};

load();
