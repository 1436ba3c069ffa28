/* 网上签约记录 (「我的」): the family's leases, newest first, each with 「查看详情」 (the lease
 * page, which offers the materials once approved). */
(() => {
  "use strict";

  const { api, el } = window.Anju;
  const { showFailure } = window.Anju.signing;
  const { card } = window.Anju.lease;
  const root = document.getElementById("records");

  async function load() {
    try {
      const leases = await api("GET", "/api/v1/lease/");
      root.replaceChildren(
        ...(leases.length
          ? leases.map((lease) => card(lease))
          : [el("p", { class: "anju-empty", text: "暂无网上签约记录" })]),
      );
    } catch (failure) {
      root.replaceChildren(el("p", { class: "anju-empty", text: "加载失败，请刷新页面重试" }));
      await showFailure(failure);
    } finally {
      document.getElementById("loading").hidden = true;
    }
  }

  load();
})();
