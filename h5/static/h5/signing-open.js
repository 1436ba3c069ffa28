/* The phone opened the QR code's URL (/s/<token>), from WeChat's scanner or a screenshot in
 * the album. No login: the API opens the ticket, which starts this phone's signing session
 * for that one agreement and stage, and says where to go (the 电子合同 page, or the deposit
 * page); or the page says plainly why not. */

import { api } from "./lib/api.js";

const root = document.getElementById("qr-open");
const token = root.dataset.token;

const TITLES = {
  qr_not_yours: "无法签约",
  qr_expired: "二维码已过期",
  qr_superseded: "二维码已更新",
  qr_invalid: "二维码无效",
  qr_stage_mismatch: "该环节已完成",
  agreement_not_pending: "无需扫码",
};

/* Nothing left to do with this code (the agreement was signed, or its step is over): said
 * with the neutral info icon, not as an error. */
const NOTHING_TO_DO = new Set(["qr_stage_mismatch", "agreement_not_pending"]);

function show(title, desc, { info = false } = {}) {
  const icon = info ? "weui-icon-info" : "weui-icon-warn";
  document.getElementById("open-icon").className = `${icon} weui-icon_msg`;
  document.getElementById("open-title").textContent = title;
  document.getElementById("open-desc").textContent = desc;
  const back = document.getElementById("open-back");
  if (back) back.hidden = false;
}

async function open() {
  try {
    const data = await api("POST", "/api/v1/signing/qr/open/", { token });
    window.location.replace(data.next_url);
  } catch (failure) {
    if (failure.redirecting) return;
    const error = failure.error || {};
    show(TITLES[error.code] || "无法打开签约", error.message || "系统繁忙，请稍后再试", {
      info: NOTHING_TO_DO.has(error.code),
    });
  }
}

open();
