/* Home page: log out through the API. (The 关怀模式 switch is a plain form:
 * h5/_care_switch.html.) */

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
