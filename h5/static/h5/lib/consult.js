/* 咨询电话 as the API gives it (`help` of an agreement or a lease: signing/agreements/consult.py):
 * 「请拨打咨询电话 0755-…、0755-…（工作日 …）」 with tap-to-call numbers, the twin of the
 * server's h5/signing/_help.html. */

import { el } from "./dom.js";

/* The sentence's pieces, to put in a [data-consult] node or anywhere else. */
export function nodes(help) {
  const out = ["请拨打咨询电话 "];
  (help.phones || []).forEach((phone, index) => {
    if (index) out.push("、");
    out.push(el("a", { class: "anju-consult__tel", href: `tel:${phone}`, text: phone }));
  });
  if (help.hours) out.push(`（${help.hours}）`);
  return out;
}

/* Every [data-consult] under `root` says `help` (the server's default stays when none). */
export function fill(root, help) {
  if (!help || !help.phones || !help.phones.length) return;
  for (const node of root.querySelectorAll("[data-consult]")) node.replaceChildren(...nodes(help));
}
