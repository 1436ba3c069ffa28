/* 网上签约 pieces every signing and lease page shows: an agreement's status badge and the
 * agreement a page is about. Pages render what the API returns; the order of steps and every
 * check is the server's. */

import { el } from "./dom.js";

/* 待签字 / 已签字 / 已盖章 / 作废 / 已放弃, coloured by status. */
export function badge(agreement, attrs = {}) {
  return el("span", {
    class: `anju-badge anju-badge_${agreement.status}`,
    text: agreement.status_label,
    ...attrs,
  });
}

/* The agreement of this page: #signing's data-agreement-id, null when there is none. */
export function agreementId() {
  const root = document.getElementById("signing");
  return root ? Number.parseInt(root.dataset.agreementId, 10) : null;
}
