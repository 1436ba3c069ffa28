/* 房源信息播报 (public): counts by building and layout, every unit's status, the latest
 * takes. The snapshot is GET /api/v1/broadcast/<id>/; the public socket /ws/broadcast/<id>/
 * then brings each unit taken (selection.unit_taken), applied here: the unit's status, the
 * counts and the feed change without a reload (docs/REALTIME.md). 「刷新」 reads the
 * snapshot again. */
import { el, setBusy } from "./lib/dom.js";
import { connect, now } from "./lib/live.js";
import { fmt } from "./lib/selection.js";

const root = document.getElementById("broadcast");
const rid = Number(root.dataset.roundId);
const board = document.getElementById("board");
const updated = document.getElementById("updated");
const refresh = document.getElementById("refresh-btn");

const HOW = { confirmed: "确认选定", auto: "系统选定", staff: "工作人员分配" };
const FEED_SIZE = 30; // as the snapshot's
const FRESH_MS = 4000; // a unit just taken is highlighted this long

let data = null; // the board: the snapshot, with the events since applied
const folded = new Set(); // buildings the viewer folded: kept folded across redraws
const fresh = new Map(); // unit id → when it was taken (live)

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
        {
          class: "anju-building",
          open: !folded.has(building),
          ontoggle: (event) => {
            if (event.currentTarget.open) folded.delete(building);
            else folded.add(building);
          },
        },
        el("summary", { class: "anju-building__summary", text: `${building}栋（可选 ${open}/${list.length}）` }),
        el(
          "ul",
          { class: "anju-tiles" },
          list.map((unit) =>
            el(
              "li",
              {
                class: `anju-tile anju-tile_${unit.status}${
                  Date.now() - (fresh.get(unit.id) || 0) < FRESH_MS ? " anju-tile_fresh" : ""
                }`,
                title: `${unit.building}栋 ${unit.number} ${unit.layout_label} ${unit.status_label}`,
                "aria-label": `${unit.building}栋 ${unit.number} ${unit.layout_label} ${unit.status_label}`,
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

/* 总数 = 已选 + 可选 (+ 已撤回: its column only once staff withdrew a unit, which is neither). */
function counts(name, rows, label) {
  const withdrawn = data.withdrawn > 0;
  return table(
    name,
    [label, "总数", "已选", ...(withdrawn ? ["已撤回"] : []), "可选"],
    rows.map(([title, c]) => [title, c.total, c.taken, ...(withdrawn ? [c.withdrawn] : []), c.available]),
  );
}

function render(serverMs) {
  board.replaceChildren(
    el(
      "div",
      { class: "anju-stats", "aria-label": "房源总览" },
      stat("房源总数", data.total),
      stat("已选", data.taken, "taken"),
      data.withdrawn > 0 ? stat("已撤回", data.withdrawn) : null,
      stat("可选", data.available, "available"),
    ),
    counts("按楼栋", data.by_building.map((b) => [`${b.building}栋`, b]), "楼栋"),
    counts("按户型", data.by_layout.map((l) => [l.label, l]), "户型"),
    feed(data.feed),
    grid(data.units),
  );
  updated.textContent = `更新于 ${fmt.time(serverMs)}（服务器时间）`;
}

const bump = (row) => {
  if (row) {
    row.taken += 1;
    row.available -= 1;
  }
};

/* A unit was taken: its tile, the counts (once: the snapshot may already have it) and
 * the feed (by its log entry, so never twice). */
function unitTaken(event) {
  const { unit: taken, how, entry: seq } = event.data;
  const unit = data.units.find((u) => u.id === taken.id);
  if (!unit) {
    live.refresh(); // a unit this board does not know: read the whole board again
    return;
  }
  if (unit.status === "available") {
    bump(data);
    bump(data.by_building.find((b) => b.building === unit.building));
    bump(data.by_layout.find((l) => l.layout === unit.layout));
  }
  unit.status = "taken";
  unit.status_label = "已选";
  if (!data.feed.some((item) => item.seq === seq)) {
    data.feed.push({
      unit: `${unit.building}栋 ${unit.number}`,
      layout_label: unit.layout_label,
      how,
      how_label: HOW[how] || "",
      at: event.at,
      seq,
    });
    data.feed.sort((a, b) => b.seq - a.seq);
    data.feed.length = Math.min(data.feed.length, FEED_SIZE);
  }
  fresh.set(unit.id, Date.now());
  render(now());
}

const live = connect({
  socket: `/ws/broadcast/${rid}/`,
  snapshot: `/api/v1/broadcast/${rid}/`,
  onSnapshot(snapshot) {
    data = snapshot;
    render(snapshot.server_time_ms);
  },
  onEvent(event) {
    if (event.type === "selection.unit_taken" && data) unitTaken(event);
    // Staff withdrew or restored a unit (rare): read the board again, counts and tiles.
    if (event.type === "selection.unit_withdrawn" || event.type === "selection.unit_restored") {
      live.refresh();
    }
  },
  onError(failure) {
    updated.textContent = (failure.error && failure.error.message) || "加载失败，请稍后刷新";
  },
});

refresh.addEventListener("click", async () => {
  setBusy(refresh, true, "刷新中");
  try {
    await live.refresh();
  } finally {
    setBusy(refresh, false);
  }
});
