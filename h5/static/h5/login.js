/* Login page: ID number + SMS code through the JSON API (development identity provider).
 * When another device is logged in to the account the API answers 409 `device_active` and
 * holds the login for this browser: a dialog asks whether to end the other device
 * (继续登录 → login/confirm/, 取消 → login/cancel/); no new code is needed either way. */

import { api, nextUrl } from "./lib/api.js";
import { clearErrors, showErrors, countdown, setBusy } from "./lib/dom.js";
import { dialog } from "./lib/dialogs.js";

const form = document.getElementById("login-form");
if (form) wire(form); // else only the identity platform button is on the page

function wire(form) {
  const idInput = form.querySelector("#id_number");
  const codeInput = form.querySelector("#code");
  const sendButton = form.querySelector("#send-code");
  const loginButton = form.querySelector("#login-btn");
  const info = form.querySelector("#form-info");

  const idNumber = () => idInput.value.replace(/[\s-]/g, "").toUpperCase();

  function missing(field, message) {
    return { error: { code: "required", message, fields: { [field]: [message] } } };
  }

  function showInfo(text) {
    info.textContent = text;
    info.hidden = !text;
  }

  sendButton.addEventListener("click", async () => {
    if (sendButton.disabled) return;
    clearErrors(form);
    showInfo("");
    if (!idNumber()) {
      showErrors(form, missing("id_number", "请输入身份证号码"));
      return;
    }
    setBusy(sendButton, true, "发送中…");
    try {
      const data = await api("POST", "/api/v1/auth/sms-code/", { id_number: idNumber() });
      const minutes = Math.max(1, Math.round(data.expires_in / 60));
      showInfo(`${data.message}，${minutes}分钟内有效。`);
      countdown(sendButton, data.resend_after);
      codeInput.focus();
    } catch (failure) {
      if (failure.redirecting) return;
      setBusy(sendButton, false);
      showErrors(form, failure);
      if (failure.error.code === "sms_resend_too_soon" && failure.retryAfter) {
        countdown(sendButton, failure.retryAfter);
      }
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (loginButton.disabled) return;
    clearErrors(form);
    if (!idNumber()) {
      showErrors(form, missing("id_number", "请输入身份证号码"));
      return;
    }
    const code = codeInput.value.trim();
    if (!code) {
      showErrors(form, missing("code", "请输入6位数字验证码"));
      return;
    }
    setBusy(loginButton, true, "正在登录…");
    try {
      await api("POST", "/api/v1/auth/login/", { id_number: idNumber(), code });
      window.location.replace(nextUrl());
    } catch (failure) {
      if (failure.redirecting) return;
      if (failure.error.code === "device_active") {
        await confirmHere();
        return;
      }
      setBusy(loginButton, false);
      showErrors(form, failure);
    }
  });

  /* Another device is logged in: ask before ending it. The code was used; the login waits
   * in this browser's session for a few minutes. */
  async function confirmHere() {
    const goOn = await dialog({
      title: "该账号已在其他设备登录",
      body: "在此设备继续登录，另一设备将退出。",
      buttons: [
        { label: "取消", value: false, kind: "default" },
        { label: "继续登录", value: true, kind: "primary" },
      ],
    });
    if (!goOn) {
      api("POST", "/api/v1/auth/login/cancel/").catch(() => {}); // it expires anyway
      setBusy(loginButton, false);
      codeInput.value = "";
      showInfo("已取消登录，另一设备保持登录。");
      return;
    }
    try {
      await api("POST", "/api/v1/auth/login/confirm/");
      window.location.replace(nextUrl());
    } catch (failure) {
      if (failure.redirecting) return;
      setBusy(loginButton, false);
      codeInput.value = "";
      showErrors(form, failure);
    }
  }
}
