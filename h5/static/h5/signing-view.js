/* The viewer (「查看」): the pages are images drawn on the server. A page that fails to load
 * (a dropped connection on a phone) says so and offers 「重新加载」 instead of a broken image.
 * 打印 and 保存 are plain links to the PDF: they work without this script. */

import { el } from "./lib/dom.js";

function broken(img) {
  const figure = img.closest("figure");
  if (!figure || figure.querySelector(".anju-viewer__retry")) return;
  img.hidden = true;
  const retry = el("button", {
    type: "button",
    class: "weui-btn weui-btn_mini weui-btn_default anju-viewer__retry",
    text: "本页加载失败，点击重新加载",
    onclick: () => {
      retry.remove();
      img.hidden = false;
      const url = new URL(img.src, window.location.href);
      url.searchParams.set("retry", String(Date.now()));
      img.src = url.toString();
    },
  });
  figure.insertBefore(retry, figure.querySelector("figcaption"));
}

for (const img of document.querySelectorAll(".anju-viewer__page img")) {
  if (img.complete && img.naturalWidth === 0 && img.src) broken(img);
  img.addEventListener("error", () => broken(img));
}
