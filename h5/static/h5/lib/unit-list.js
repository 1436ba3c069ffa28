/* The unit list of pre- and formal selection (issue 16 item 2): 200 and more units that a
 * person can use on a phone.
 *
 * - Grouped by building (楼栋) in natural order (2栋 before 10栋), each group under a header
 *   that sticks below the title bar while its units scroll by, with the count shown.
 * - Filtered on the phone, from the one list the page read (no request per filter): 楼栋,
 *   户型, 朝向, 只看可选 (units nobody has taken), and a search by unit number: 「1203」 finds
 *   room 1203 in every building, 「3栋1203」 or 「3-1203」 the one in building 3.
 * - 户型 starts at 「我家可选」: the layouts the server lets this family choose (each unit's
 *   `eligible`, computed by the API as the server's cart rule does: the unit's layout is one
 *   of the family's eligible layouts). 「全部户型」 or a single layout widens it; a unit the
 *   family cannot choose then shows 「户型不符」, never a 【选择】 the server would refuse.
 * - Live updates touch only what changed: a unit taken redraws its own row, a cart change
 *   patches the buttons whose state moved; rows are built once per list read and kept
 *   (detached, not rebuilt) while filters hide them.
 *
 *   const units = unitList({ container, form, onSelect, state: () => ({ inCart, full }) });
 *   units.set(list)     // a list read from …/units/ (rows of unchanged units are kept)
 *   units.refresh()     // the cart changed: 已加入 / 已满 / 选择 where they moved
 *   units.redraw(id)    // one unit changed (taken live)
 *   units.list          // the units held
 */

import { el } from "./dom.js";
import { unitDesc, unitName } from "./selection.js";

const MINE = "mine"; // the 户型 filter's default: the layouts this family may choose

/* Why 【选择】 is not available for a unit, or "" when it is. */
function blockedReason(unit, inCart, full) {
  if (unit.status === "taken") return "已被选";
  if (inCart.has(unit.id)) return "已加入";
  if (unit.status !== "available") return unit.status_label || "不可选";
  if (!unit.eligible) return "户型不符";
  if (full) return "已满";
  return "";
}

const naturalBuilding = (a, b) => a.length - b.length || a.localeCompare(b, "zh-CN");
const naturalNumber = (a, b) =>
  a.floor - b.floor || a.number.length - b.number.length || a.number.localeCompare(b.number);

/* 「3栋 1203」, 「3-1203」, 「1203」: lower-case, no spaces, 「#」 and 「号楼」 as 「栋」. */
const normalise = (text) =>
  String(text || "")
    .toUpperCase()
    .replace(/\s+/g, "")
    .replace(/号楼|#/g, "栋");

function searchable(unit) {
  const number = normalise(unit.number);
  const building = normalise(unit.building);
  return [number, `${building}栋${number}`, `${building}-${number}`, normalise(unit.label)];
}

export function unitList({ container, form, onSelect, state }) {
  const rows = new Map(); // unit id → {unit, li, button, reason, key}
  const groups = new Map(); // building → {section, list, count}
  let units = [];
  let optionsKey = "";
  let searchTimer = 0;

  const summary = el("p", { class: "anju-units-summary", id: "units-summary", role: "status" });
  const summaryText = el("span", { class: "anju-units-summary__text" });
  const widen = el("button", {
    type: "button",
    class: "weui-btn weui-btn_mini weui-btn_default anju-units-summary__widen",
    text: "显示全部户型",
    hidden: true,
    onclick: () => {
      form.elements.layout.value = "";
      filter();
      form.elements.layout.focus({ preventScroll: true });
    },
  });
  summary.append(summaryText, widen);
  form.after(summary);

  /* ------------------------------------------------------------------ the rows */

  const keyOf = (unit) => `${unit.status}|${unit.eligible}|${Boolean(unit.takenLive)}`;

  function button(unit, reason) {
    const name = unitName(unit);
    return reason
      ? el("button", {
          type: "button",
          class: "weui-btn weui-btn_mini weui-btn_default weui-btn_disabled anju-units__btn",
          disabled: true,
          "aria-label": `${name} ${reason}`,
          text: reason,
        })
      : el("button", {
          type: "button",
          class: "weui-btn weui-btn_mini weui-btn_primary anju-units__btn",
          "aria-label": `选择 ${name}`,
          text: "选择",
          onclick: (event) => onSelect(unit.id, event.currentTarget),
        });
  }

  function buildRow(unit, reason) {
    const btn = button(unit, reason);
    const li = el(
      "li",
      {
        class: `anju-units__item${unit.status !== "available" ? " anju-units__item_taken" : ""}`,
        dataset: { unitId: unit.id },
      },
      el(
        "div",
        { class: "anju-units__unit" },
        el(
          "p",
          { class: "anju-unit__title" },
          el("span", { text: unitName(unit) }),
          unit.status === "taken" ? el("span", { class: "anju-tag anju-tag_taken", text: "已被选" }) : null,
        ),
        el("p", { class: "anju-unit__desc", text: unitDesc(unit) }),
      ),
      btn,
    );
    return { unit, li, button: btn, reason, key: keyOf(unit), search: searchable(unit) };
  }

  function reasonOf(unit, now = state()) {
    return blockedReason(unit, now.inCart, now.full);
  }

  /* ----------------------------------------------------------- the filter options */

  function fillOptions() {
    const buildings = [...new Set(units.map((u) => u.building))].sort(naturalBuilding);
    const layouts = new Map(); // value → {label, area (the smallest: the order), eligible}
    const orientations = new Map();
    for (const unit of units) {
      const seen = layouts.get(unit.layout);
      const area = Number(unit.area) || 0;
      if (!seen) layouts.set(unit.layout, { label: unit.layout_label, area, eligible: unit.eligible });
      else {
        seen.area = Math.min(seen.area, area);
        seen.eligible = seen.eligible || unit.eligible;
      }
      orientations.set(unit.orientation, unit.orientation_label);
    }
    const layoutList = [...layouts.entries()].sort((a, b) => a[1].area - b[1].area);
    const key = JSON.stringify([buildings, layoutList, [...orientations]]);
    if (key === optionsKey) return;
    const first = !optionsKey;
    optionsKey = key;
    const mine = layoutList.filter(([, o]) => o.eligible).map(([, o]) => o.label);
    const fill = (name, options) => {
      const select = form.elements[name];
      const current = first ? select.dataset.default || "" : select.value;
      select.replaceChildren(...options.map(([value, label]) => el("option", { value, text: label })));
      select.value = options.some(([value]) => value === current) ? current : "";
    };
    form.elements.layout.dataset.default = MINE;
    fill("building", [["", "全部"], ...buildings.map((b) => [b, `${b}栋`])]);
    fill("layout", [
      [MINE, "我家可选"],
      ["", "全部户型"],
      ...layoutList.map(([value, o]) => [value, o.label]),
    ]);
    fill("orientation", [["", "全部"], ...[...orientations].sort()]);
    form.elements.layout.dataset.mine = mine.join("、");
  }

  /* ------------------------------------------------------------------- filtering */

  function filters() {
    const f = form.elements;
    return {
      building: f.building.value,
      layout: f.layout.value,
      orientation: f.orientation.value,
      onlyOpen: f.only_open.checked,
      query: normalise(f.q.value),
    };
  }

  function shows(row, f, { layout = true } = {}) {
    const unit = row.unit;
    if (f.building && unit.building !== f.building) return false;
    if (layout && (f.layout === MINE ? !unit.eligible : f.layout && unit.layout !== f.layout)) return false;
    if (f.orientation && unit.orientation !== f.orientation) return false;
    if (f.onlyOpen && !(unit.status === "available" || unit.takenLive)) return false;
    if (f.query && !row.search.some((text) => text.includes(f.query))) return false;
    return true;
  }

  function group(building) {
    let g = groups.get(building);
    if (!g) {
      const id = `units-building-${groups.size + 1}`;
      const count = el("span", { class: "anju-units__count" });
      const list = el("ul", { class: "anju-units", "aria-labelledby": id });
      const section = el(
        "section",
        { class: "anju-units__group", dataset: { building } },
        el("h4", { class: "anju-units__building", id }, el("span", { text: `${building}栋` }), count),
        list,
      );
      g = { section, list, count };
      groups.set(building, g);
    }
    return g;
  }

  /* Put the rows the filters let through into their groups, in order; the rest are
   * detached (kept for later, not rebuilt). */
  function filter() {
    const f = filters();
    const byBuilding = new Map();
    let shown = 0;
    let outsideLayout = 0; // would show with 「全部户型」
    for (const unit of units) {
      const row = rows.get(unit.id);
      if (shows(row, f)) {
        if (!byBuilding.has(unit.building)) byBuilding.set(unit.building, []);
        byBuilding.get(unit.building).push(row);
        shown += 1;
      } else if (f.layout === MINE && shows(row, f, { layout: false })) {
        outsideLayout += 1;
      }
    }
    const sections = [];
    for (const building of [...byBuilding.keys()].sort(naturalBuilding)) {
      const g = group(building);
      const list = byBuilding.get(building).sort((a, b) => naturalNumber(a.unit, b.unit));
      g.list.replaceChildren(...list.map((row) => row.li));
      g.count.textContent = `${list.length}套`;
      sections.push(g.section);
    }
    if (shown) {
      container.replaceChildren(...sections);
    } else {
      const text =
        f.layout === MINE && !f.query && !f.building && !f.orientation
          ? "没有符合您家庭可选户型的房源"
          : "没有符合条件的房源";
      container.replaceChildren(el("p", { class: "anju-empty", text }));
    }
    const mine = form.elements.layout.dataset.mine;
    const parts = [f.query ? `找到${shown}套房源` : `共${shown}套房源`];
    if (f.layout === MINE) parts.push(mine ? `已按您家庭可选户型（${mine}）筛选` : "已按您家庭可选户型筛选");
    if (outsideLayout) parts.push(`其他户型另有${outsideLayout}套`);
    summaryText.textContent = parts.join("，");
    widen.hidden = !(f.layout === MINE && outsideLayout);
  }

  /* ---------------------------------------------------------------- the page's API */

  /* A list read from the API: rows of units whose state did not change are kept. */
  function set(next) {
    units = next;
    const now = state();
    const ids = new Set();
    for (const unit of units) {
      ids.add(unit.id);
      const row = rows.get(unit.id);
      const reason = reasonOf(unit, now);
      if (row && row.key === keyOf(unit) && row.reason === reason) {
        row.unit = unit;
      } else {
        rows.set(unit.id, buildRow(unit, reason));
      }
    }
    for (const id of [...rows.keys()]) if (!ids.has(id)) rows.delete(id);
    fillOptions();
    filter();
  }

  /* One unit changed (taken while on screen): its row is rebuilt in place. */
  function redraw(unitId) {
    const row = rows.get(unitId);
    if (!row) return;
    const fresh = buildRow(row.unit, reasonOf(row.unit));
    rows.set(unitId, fresh);
    if (row.li.isConnected) row.li.replaceWith(fresh.li);
  }

  /* The cart changed: only the buttons whose reason moved are replaced. */
  function refresh() {
    const now = state();
    for (const row of rows.values()) {
      const reason = reasonOf(row.unit, now);
      if (reason === row.reason && row.key === keyOf(row.unit)) continue;
      if (row.key !== keyOf(row.unit)) {
        redraw(row.unit.id);
        continue;
      }
      const fresh = button(row.unit, reason);
      row.button.replaceWith(fresh);
      row.button = fresh;
      row.reason = reason;
    }
  }

  /* The headers stick right under whatever sticks above the list (the title bar, the formal
   * page's countdown): their stuck bottom, measured, as the headers' `top` (CSSOM, which the
   * Content-Security-Policy allows; no style attribute). Measured again when a bar changes
   * size (larger text, 关怀模式). */
  function stickBelowBars() {
    let bottom = 0;
    for (const bar of document.querySelectorAll(".anju-titlebar, .anju-countdown")) {
      const css = getComputedStyle(bar);
      if (css.position !== "sticky" || !bar.offsetHeight) continue;
      bottom = Math.max(bottom, (Number.parseFloat(css.top) || 0) + bar.offsetHeight);
    }
    if (bottom) container.style.setProperty("--anju-units-top", `${bottom}px`);
  }
  if (typeof ResizeObserver === "function") {
    const watch = new ResizeObserver(stickBelowBars);
    for (const bar of document.querySelectorAll(".anju-titlebar, .anju-countdown")) watch.observe(bar);
  }

  form.addEventListener("change", (event) => {
    if (event.target.name !== "q") filter();
  });
  form.addEventListener("input", (event) => {
    if (event.target.name !== "q") return;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(filter, 120);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    filter();
    form.elements.q.blur(); // the phone's keyboard goes away and the list shows
  });

  return {
    set,
    refresh,
    redraw,
    get list() {
      return units;
    },
  };
}
