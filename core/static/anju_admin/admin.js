/* The staff admin's own script (core/templates/admin/base_site.html loads it on every admin
   page): a form with data-confirm asks before it is sent. It replaces inline
   onsubmit="return confirm(...)" handlers, which the Content-Security-Policy forbids. */
(() => {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
