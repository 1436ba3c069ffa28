/* Home page: log out through the API, and reload when 当前事项 would change. (The 关怀模式
 * switch is a plain form: h5/_care_switch.html.) */

import { api, LOGIN_URL } from "./lib/api.js";
import { $, setBusy } from "./lib/dom.js";

const button = $("logout-btn");
const error = $("page-error");

button.addEventListener("click", async () => {
  if (button.disabled) return;
  error.hidden = true;
  setBusy(button, true, "正在退出…");
  try {
    await api("POST", "/api/v1/auth/logout/");
    window.location.replace(LOGIN_URL);
  } catch (failure) {
    if (failure.redirecting) return;
    if (failure.status === 401) {
      // Already logged out (expired, ended elsewhere): the login page says why.
      window.location.replace(LOGIN_URL);
      return;
    }
    setBusy(button, false);
    error.textContent = failure.error.message;
    error.hidden = false;
  }
});

/* 当前事项 says where the family stands as of this page's load; when a line would change by
 * the clock alone (a session opens or closes, 补选 applications close) the server says in
 * how many seconds, and the page reloads itself 1–4 s after: spread, so that the families
 * who left a home page open (pre-selection opens for a whole round at once) do not all ask
 * in the same second as the selection pages. */
const steps = document.getElementById("next-steps");
const refreshIn = steps ? Number.parseInt(steps.dataset.refreshIn, 10) : Number.NaN;
if (Number.isFinite(refreshIn) && refreshIn < 6 * 3600) {
  setTimeout(() => window.location.reload(), refreshIn * 1000 + 1000 + Math.random() * 3000);
}
