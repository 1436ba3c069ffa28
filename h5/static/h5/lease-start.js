/* 「去签约」 / 「租赁合同签约」: ask the API for the family's lease (created on first use from
 * its allocation) and go on to it; or say plainly why not (the API's own message). */

import { api, LOGIN_URL } from "./lib/api.js";
import { $ } from "./lib/dom.js";

async function start() {
  try {
    const lease = await api("POST", "/api/v1/lease/start/");
    window.location.replace(`/h5/lease/${lease.id}/`);
  } catch (failure) {
    if (failure.redirecting) return;
    if (failure.status === 401) {
      window.location.replace(`${LOGIN_URL}?next=${encodeURIComponent(window.location.pathname)}`);
      return;
    }
    $("start-icon").className = "weui-icon-warn weui-icon_msg";
    $("start-title").textContent = "暂不能签约";
    $("start-desc").textContent = (failure.error && failure.error.message) || "系统繁忙，请稍后再试";
    $("start-ops").hidden = false;
  }
}

start();
