/* 「签约协议」 on a desktop (guide 001): the QR code for the phone, and the phone's progress
 * live (lib/qr-progress.js): 已扫码, then each step the phone completes, up to 短信验证并提交, without
 * a refresh. The phone never logs in (opening the code starts its own signing session), so
 * this page stays logged in throughout; the progress is read with the code's stream token
 * all the same. A code that runs out is replaced by a new one, the progress kept. */

import { api } from "./lib/api.js";
import { qrProgress } from "./lib/qr-progress.js";
import { agreementId } from "./lib/signing.js";

const SUBMITTED = 7;
const id = agreementId();
const $ = (name) => document.getElementById(name);
const finished = (p) => p.done || p.step >= SUBMITTED;

const qr = qrProgress({
  issue: () => api("POST", `/api/v1/signing/agreements/${id}/qr/`),
  finished,
  onProgress(progress) {
    if (finished(progress)) submitted();
  },
  onIssueFailure(failure) {
    $("qr-error-text").textContent =
      (failure.error && failure.error.message) || "二维码生成失败，请刷新页面重试";
    $("qr-error").hidden = false;
    return true;
  },
});

/* The phone submitted: nothing left to scan, nothing more to hear. */
function submitted() {
  qr.stop();
  $("progress-done").hidden = false;
  $("qr-body").classList.add("anju-qr__body_done");
  $("qr-deadline").textContent = "签约已提交，二维码已失效，无需再扫码";
}

// How far the phone got before this code (a new code's stream starts empty).
api("GET", `/api/v1/signing/agreements/${id}/`).then(
  (agreement) => {
    qr.update({ step: agreement.step });
    if (agreement.status !== "pending" && agreement.step >= SUBMITTED) submitted();
  },
  () => {}, // the stream's events say it as well
);
