/* The phone opened the QR code's URL (/s/<token>), logged in: open the ticket through the API
 * and go on to the page for the code's purpose; or say plainly why not. */
(() => {
  "use strict";

  const { api, LOGIN_URL } = window.Anju;
  const root = document.getElementById("qr-open");
  const token = root.dataset.token;

  const MESSAGES = {
    qr_not_yours: ["该二维码不属于您", "该二维码不属于您，只有主申请人本人可以扫码签约"],
    qr_expired: ["二维码已过期", "签约期限已过，二维码已失效。如有疑问，请拨打咨询电话。"],
    qr_invalid: ["二维码无效", "请在电脑端「网上签约」点击「签约协议」重新获取二维码"],
  };

  function show(title, desc) {
    document.getElementById("open-icon").className = "weui-icon-warn weui-icon_msg";
    document.getElementById("open-title").textContent = title;
    document.getElementById("open-desc").textContent = desc;
    document.getElementById("open-back").hidden = false;
  }

  /* Where the code's purpose leads: 人脸识别 (the phone flow, stopping after the face check),
   * 签署协议 (the phone flow), 缴纳押金 (the lease's deposit page). */
  function destination(data) {
    const agreement = encodeURIComponent(data.agreement);
    switch (data.purpose) {
      case "face":
        return `/h5/signing/${agreement}/sign/?until=face`;
      case "deposit":
        return `/h5/lease/by-agreement/${agreement}/deposit/`;
      default:
        return `/h5/signing/${agreement}/sign/`;
    }
  }

  async function open() {
    try {
      const data = await api("POST", "/api/v1/signing/qr/open/", { token });
      window.location.replace(destination(data));
    } catch (failure) {
      if (failure.redirecting) return;
      const code = failure.error && failure.error.code;
      if (failure.status === 401 || code === "not_authenticated") {
        window.location.replace(`${LOGIN_URL}?next=${encodeURIComponent(window.location.pathname)}`);
        return;
      }
      const known = MESSAGES[code];
      if (known) show(known[0], known[1]);
      else show("无法打开签约", (failure.error && failure.error.message) || "系统繁忙，请稍后再试");
    }
  }

  open();
})();
