/* 《个人信息保护政策》 page: 「同意并继续」 (with the box ticked) acknowledges the version shown
 * through the API and goes on to `?next=` (a path on this site only); a newer version
 * published meanwhile (409 consent_outdated) reloads the page to show it; 「不同意」 logs out. */

import { api, nextUrl } from "./lib/api.js";
import { setBusy } from "./lib/dom.js";
import { alert } from "./lib/dialogs.js";

const form = document.getElementById("privacy-form");
if (form) wire(form);

function wire(form) {
  const agree = form.querySelector("#privacy-agree");
  const accept = form.querySelector("#privacy-accept");
  const error = form.querySelector("#privacy-error");

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!agree.checked) {
      showError("请先勾选「我已阅读并同意」");
      return;
    }
    showError("");
    setBusy(accept, true, "正在提交…");
    try {
      await api("POST", "/api/v1/me/privacy/", { version: Number(form.dataset.version) });
      window.location.replace(nextUrl());
    } catch (failure) {
      setBusy(accept, false);
      if (failure.redirecting) return;
      if (failure.error && failure.error.code === "consent_outdated") {
        await alert(failure.error.message);
        window.location.reload();
        return;
      }
      showError((failure.error && failure.error.message) || "提交失败，请重试");
    }
  });

  form.querySelector("#privacy-decline").addEventListener("click", async () => {
    try {
      await api("POST", "/api/v1/auth/logout/");
    } catch {
      /* logged out or not: the login page either way */
    }
    window.location.replace("/h5/login/");
  });
}
