/* The development cashier page (dev_pay.html, standing in for WeChat Pay's own); a static
 * file so the Content-Security-Policy needs no inline script. */

const form = document.getElementById("pay-form");
if (form) {
  const button = document.getElementById("pay-confirm");
  let submitted = false;
  form.addEventListener("submit", (event) => {
    // One tap pays once (the provider would not pay twice anyway).
    if (submitted) {
      event.preventDefault();
      return;
    }
    submitted = true;
    button.classList.add("weui-btn_disabled");
    button.textContent = "正在支付…";
  });
}
