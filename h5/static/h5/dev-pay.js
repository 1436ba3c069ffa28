// The development cashier page (dev_pay.html); a static file so the
// Content-Security-Policy needs no inline script.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form) return;
  var button = document.getElementById("pay-confirm");
  var submitted = false;
  form.addEventListener("submit", function (event) {
    // One tap pays once (the provider would not pay twice anyway).
    if (submitted) {
      event.preventDefault();
      return;
    }
    submitted = true;
    button.classList.add("weui-btn_disabled");
    button.textContent = "正在支付…";
  });
})();
