/* 房源信息播报 (public): counts by building and layout, every unit's status, the latest
 * takes, from GET /api/v1/broadcast/<id>/. 「刷新」 reads it again. */
(() => {
  "use strict";

  const { el, api, setBusy } = window.Anju;
  const { fmt } = window.Anju.sel;
  const root = document.getElementById("broadcast");
  const rid = Number(root.dataset.roundId);
  const board = document.getElementById("board");
  const updated = document.getElementById("updated");
  const refresh = document.getElementById("refresh-btn");

  const HOW = { confirmed: "确认选定", auto: "系统选定", staff: "工作人员分配" };

  function stat(label, value, modifier) {
    return el(
      "div",
      { class: `anju-stat${modifier ? ` anju-stat_${modifier}` : ""}` },
      el("span", { class: "anju-stat__value", text: value }),
      el("span", { class: "anju-stat__label", text: label }),
    );
  }

  function table(caption, head, rows) {
    return el(
      "table",
      { class: "anju-table" },
      el("caption", { class: "weui-cells__title anju-section-title", text: caption }),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
      el(
        "tbody",
        {},
        rows.map(([first, ...rest]) =>
          el("tr", {}, el("th", { scope: "row", text: first }), rest.map((c) => el("td", { text: c }))),
        ),
      ),
    );
  }

  function feed(items) {
    return el(
      "section",
      { "aria-labelledby": "feed-title" },
      el("h3", { class: "weui-cells__title anju-section-title", id: "feed-title", text: "最新选定" }),
      items.length
        ? el(
            "ol",
            { class: "weui-cells anju-inset anju-feed", id: "feed" },
            items.map((item) =>
              el(
                "li",
                { class: "weui-cell" },
                el("span", { class: "anju-feed__time", text: fmt.time(item.at) }),
                el("span", { class: "weui-cell__bd", text: `${item.unit} ${item.layout_label}` }),
                el("span", { class: "weui-cell__ft", text: HOW[item.how] || "" }),
              ),
            ),
          )
        : el("p", { class: "anju-empty", id: "feed", text: "暂无房源被选定" }),
    );
  }

  function grid(units) {
    const buildings = new Map();
    for (const unit of units) {
      if (!buildings.has(unit.building)) buildings.set(unit.building, []);
      buildings.get(unit.building).push(unit);
    }
    return el(
      "section",
      { "aria-labelledby": "units-title" },
      el("h3", { class: "weui-cells__title anju-section-title", id: "units-title", text: "房源状态" }),
      el(
        "p",
        { class: "anju-legend", "aria-hidden": "true" },
        el("span", { class: "anju-tile anju-tile_available anju-legend__tile" }),
        "可选",
        el("span", { class: "anju-tile anju-tile_taken anju-legend__tile" }),
        "已选",
        el("span", { class: "anju-tile anju-tile_withdrawn anju-legend__tile" }),
        "已撤回",
      ),
      [...buildings].map(([building, list]) => {
        const open = list.filter((u) => u.status === "available").length;
        return el(
          "details",
          { class: "anju-building", open: true },
          el("summary", { class: "anju-building__summary", text: `${building}栋（可选 ${open}/${list.length}）` }),
          el(
            "ul",
            { class: "anju-tiles" },
            list.map((unit) =>
              el(
                "li",
                {
                  class: `anju-tile anju-tile_${unit.status}`,
                  title: `${unit.building}栋${unit.number} ${unit.layout_label} ${unit.status_label}`,
                  "aria-label": `${unit.building}栋${unit.number} ${unit.layout_label} ${unit.status_label}`,
                  dataset: { unitId: unit.id, status: unit.status },
                },
                el("span", { class: "anju-tile__number", text: unit.number }),
                el("span", { class: "anju-tile__layout", text: unit.layout_label }),
              ),
            ),
          ),
        );
      }),
    );
  }

  function render(data) {
    board.replaceChildren(
      el(
        "div",
        { class: "anju-stats", "aria-label": "房源总览" },
        stat("房源总数", data.total),
        stat("已选", data.taken, "taken"),
        stat("可选", data.total - data.taken, "available"),
      ),
      table(
        "按楼栋",
        ["楼栋", "总数", "已选", "可选"],
        data.by_building.map((b) => [`${b.building}栋`, b.total, b.taken, b.available]),
      ),
      table(
        "按户型",
        ["户型", "总数", "已选", "可选"],
        data.by_layout.map((l) => [l.label, l.total, l.taken, l.available]),
      ),
      feed(data.feed),
      grid(data.units),
    );
    updated.textContent = `更新于 ${fmt.time(data.server_time_ms)}（服务器时间）`;
  }

  async function load() {
    setBusy(refresh, true, "刷新中");
    try {
      render(await api("GET", `/api/v1/broadcast/${rid}/`));
    } catch (failure) {
      updated.textContent = (failure.error && failure.error.message) || "加载失败，请稍后刷新";
    } finally {
      setBusy(refresh, false);
    }
  }

  refresh.addEventListener("click", load);
  load();
})();
