/* 网上选房 shared helpers: API calls that set the clock (lib/live.js), the selection pages'
 * time formats, session names, the cart, the family's live socket. Pages only render what the
 * API returns and send the applicant's choices to it; every rule (phase, eligibility, limits,
 * who wins) is the server's. The unit list is lib/unit-list.js. */

import { api, showFailure } from "./api.js";
import { el, toast } from "./dom.js";
import { TZ, dateTime as fullDateTime, hex } from "./format.js";
import { clock, connect } from "./live.js";

/* Server time is the only clock: lib/live.js's, fed by the socket's pings and by every API
 * answer that carries server_time_ms. */
export { clock, showFailure };

export async function call(method, url, body) {
  const sentAt = Date.now();
  const data = await api(method, url, body);
  if (data && typeof data.server_time_ms === "number") {
    clock.sample(data.server_time_ms, sentAt, Date.now());
  }
  return data;
}

const FORMATS = new Map();

function parts(value, options) {
  const key = JSON.stringify(options);
  if (!FORMATS.has(key)) {
    FORMATS.set(key, new Intl.DateTimeFormat("zh-CN", { timeZone: TZ, hourCycle: "h23", ...options }));
  }
  const date = typeof value === "number" ? new Date(value) : new Date(Date.parse(value));
  const out = {};
  for (const { type, value: v } of FORMATS.get(key).formatToParts(date)) out[type] = v;
  return out;
}

export const fmt = {
  time(value) {
    const p = parts(value, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return `${p.hour}:${p.minute}:${p.second}`;
  },
  hm(value) {
    const p = parts(value, { hour: "2-digit", minute: "2-digit" });
    return `${p.hour}:${p.minute}`;
  },
  date(value) {
    const p = parts(value, { month: "numeric", day: "numeric" });
    return `${p.month}月${p.day}日`;
  },
  /* 「2026年3月3日 09:30:05」: the one format of every page (lib/format.js), to the second. */
  dateTime(value) {
    return fullDateTime(value, { seconds: true });
  },
  /* 「3月3日 09:30–09:32」 */
  window(session) {
    return `${fmt.date(session.starts_at)} ${fmt.hm(session.starts_at)}–${fmt.hm(session.ends_at)}`;
  },
  /* 「01:23」 for a remaining time in milliseconds. */
  mmss(ms) {
    const total = Math.max(0, Math.ceil(ms / 1000));
    const minutes = Math.floor(total / 60);
    return `${String(minutes).padStart(2, "0")}:${String(total % 60).padStart(2, "0")}`;
  },
};

/* A session's name and its running label by the API's `kind`: 补选 sessions are never
 * called 正选 (「补选场次」/「补选进行中」; 「第3场」/「正选进行中」). */
export const isSupplementary = (session) => Boolean(session) && session.kind === "supplementary";
export const sessionName = (session) => (isSupplementary(session) ? "补选场次" : `第${session.order}场`);
export const selectingLabel = (session) => (isSupplementary(session) ? "补选进行中" : "正选进行中");
export const selectingWord = (session) => (isSupplementary(session) ? "补选" : "正选");

export const unitName = (unit) => `${unit.building}栋 ${unit.number}`;
/* 「一房一厅 · 朝南 · 12层 · 45.20㎡ · 月租1469元」. A line may break only at a 「 · 」: each
 * part's characters are held together by U+2060 WORD JOINER (no width, not read aloud), so
 * large text never leaves 「㎡」 or 「元」 alone at the start of a line. */
const unbroken = (part) => [...part].join("\u2060");
export const unitDesc = (unit) =>
  [
    unit.layout_label,
    `朝${unit.orientation_label}`,
    `${unit.floor}层`,
    `${unit.area}㎡`,
    unit.monthly_rent ? `月租${Number(unit.monthly_rent)}元` : null,
  ]
    .filter(Boolean)
    .map(unbroken)
    .join(" · ");

/* A notice in place of a page whose phase is not open, with a way on. */
export function notice(container, { title, desc, links = [] }) {
  container.replaceChildren(
    el(
      "div",
      { class: "weui-msg anju-notice", role: "status" },
      el(
        "div",
        { class: "weui-msg__icon-area" },
        el("i", { class: "weui-icon-info weui-icon_msg", "aria-hidden": "true" }),
      ),
      el(
        "div",
        { class: "weui-msg__text-area" },
        el("h2", { class: "weui-msg__title", text: title }),
        desc ? el("p", { class: "weui-msg__desc", text: desc }) : null,
      ),
      el(
        "div",
        { class: "weui-msg__opr-area" },
        el(
          "p",
          { class: "weui-btn-area" },
          links.map(([label, href], index) =>
            el("a", {
              href,
              role: "button",
              class: `weui-btn ${index === 0 ? "weui-btn_primary" : "weui-btn_default"}`,
              text: label,
            }),
          ),
        ),
      ),
    ),
  );
}

function miniButton(label, { disabled = false, kind = "default", onclick, ...rest } = {}) {
  return el("button", {
    type: "button",
    class: `weui-btn weui-btn_mini weui-btn_${kind}${disabled ? " weui-btn_disabled" : ""}`,
    disabled,
    text: label,
    onclick,
    ...rest,
  });
}

/* The cart (购物车): position, unit, 已被选 mark, 上移 / 下移 / 置顶 / 删除, and on the
 * formal page a radio to pick the unit to confirm. */
export function renderCart(container, cart, { onMove, onRemove, pick = null, selected = null }) {
  const items = cart.items;
  if (!items.length) {
    container.replaceChildren(
      el("p", { class: "anju-empty", text: "购物车为空，请从下方房源列表中点击【选择】添加意向房源" }),
    );
    return;
  }
  const last = items.length - 1;
  container.replaceChildren(
    el(
      "ol",
      { class: "anju-cart", "aria-label": "购物车" },
      items.map((item, index) => {
        const unit = item.unit;
        const taken = unit.status !== "available";
        const name = unitName(unit);
        return el(
          "li",
          {
            class: `anju-cart__item${taken ? " anju-cart__item_taken" : ""}`,
            dataset: { unitId: unit.id, position: item.position },
            "aria-label": `第${item.position}位 ${name}`,
          },
          /* On the formal page the whole card is the radio's label: a tap anywhere on the
           * unit picks it, not only on the small circle (a two-minute window). */
          el(
            pick ? "label" : "div",
            { class: "anju-cart__main" },
            pick
              ? el(
                  "span",
                  { class: "anju-cart__pick" },
                  el("input", {
                    type: "radio",
                    name: "confirm-unit",
                    class: "weui-agree__checkbox",
                    value: unit.id,
                    checked: selected === unit.id && !taken,
                    disabled: taken,
                    "aria-label": `选定 ${name}`,
                    onchange: () => pick(unit.id),
                  }),
                )
              : null,
            el("span", { class: "anju-cart__pos", "aria-hidden": "true", text: item.position }),
            el(
              "div",
              { class: "anju-cart__unit" },
              el(
                "p",
                { class: "anju-unit__title" },
                el("span", { text: name }),
                taken ? el("span", { class: "anju-tag anju-tag_taken", text: "已被选" }) : null,
              ),
              el("p", { class: "anju-unit__desc", text: unitDesc(unit) }),
            ),
          ),
          el(
            "div",
            { class: "anju-cart__ops", role: "group", "aria-label": `调整 ${name}` },
            miniButton("上移", {
              disabled: index === 0,
              "aria-label": `上移 ${name}`,
              onclick: () => onMove(unit.id, "up"),
            }),
            miniButton("下移", {
              disabled: index === last,
              "aria-label": `下移 ${name}`,
              onclick: () => onMove(unit.id, "down"),
            }),
            miniButton("置顶", {
              disabled: index === 0,
              "aria-label": `置顶 ${name}`,
              onclick: () => onMove(unit.id, "top"),
            }),
            miniButton("删除", {
              kind: "warn",
              "aria-label": `删除 ${name}`,
              onclick: () => onRemove(unit.id),
            }),
          ),
        );
      }),
    ),
  );
}

/* Staff withdrew (撤回) a unit the family had in its cart: a toast now, which a screen reader
 * announces, and a line above the cart that stays (#cart-news), for a family that looked
 * away or was scrolled down the list while the 3-second toast came and went. */
export function cartUnitWithdrawn(unit) {
  const text = `${unitName(unit)} 已被工作人员撤回，已从购物车移除`;
  toast(text, { ms: 3000 });
  const news = document.getElementById("cart-news");
  news.append(el("p", { text }));
  news.hidden = false;
}

/* A page's unit list requests. Answers arrive out of order (a live refresh and a withdrawal
 * in flight together): only the latest request's answer is used. Rows taken live are kept
 * (keepRows) only when the answer is for the URL the shown list came from. */
export function unitRequests(urlOf) {
  let latest = 0;
  let shown = null; // the URL the page's list came from
  return {
    async fetch() {
      const mine = ++latest;
      const url = urlOf();
      const list = await call("GET", url);
      return mine === latest ? { url, list } : null;
    },
    /* The list came another way (a snapshot that carried it): newer than any read on its
     * way, which is then dropped like an overtaken one. */
    arrived(list) {
      latest += 1;
      return { url: urlOf(), list };
    },
    merge(rows, got, { keep = false } = {}) {
      const next = keep && got.url === shown ? keepRows(rows, got.list) : got.list;
      shown = got.url;
      return next;
    },
  };
}

/* A random key for one confirm attempt (crypto.randomUUID needs a secure context). */
export function randomKey() {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

/* A unit was just taken (a live event): mark it 已被选 wherever the page holds it (cart
 * items, unit lists). True when something changed. Idempotent. */
export function markTaken(unitId, ...lists) {
  let changed = false;
  for (const list of lists) {
    for (const entry of list) {
      const unit = entry.unit || entry;
      if (unit.id === unitId && unit.status !== "taken") {
        unit.status = "taken";
        unit.status_label = "已选";
        unit.takenLive = unit.eligible !== false;
        changed = true;
      }
    }
  }
  return changed;
}

/* The list read again because the round moved (a snapshot): a unit that was open on
 * screen and has been taken keeps its row, marked 已被选, also when the answer (an
 * available-only list) no longer has it. */
export function keepRows(before, after) {
  const open = new Set(before.filter((u) => u.status === "available" || u.takenLive).map((u) => u.id));
  const present = new Set(after.map((u) => u.id));
  for (const unit of after) {
    if (unit.status === "taken" && open.has(unit.id)) unit.takenLive = unit.eligible !== false;
  }
  const gone = new Map(); // the id of the row it followed (null: the top) → rows
  let previous = null;
  for (const unit of before) {
    if (present.has(unit.id)) {
      previous = unit.id;
    } else if (open.has(unit.id)) {
      markTaken(unit.id, [unit]);
      if (!gone.has(previous)) gone.set(previous, []);
      gone.get(previous).push(unit);
    }
  }
  if (!gone.size) return after;
  const rows = [...(gone.get(null) || [])];
  for (const unit of after) rows.push(unit, ...(gone.get(unit.id) || []));
  return rows;
}

export function roundId() {
  return Number(document.getElementById("selection").dataset.roundId);
}

/* The family's selection socket for this round (docs/REALTIME.md): its snapshot is
 * GET …/live/ (heads, phase, session, carts, allocation). `units` ("all" / "available"):
 * the first snapshot brings the unit list too (read after its heads, like the rest).
 * `opened`: the page's own first read, made while the socket connects; the snapshot and
 * its failures wait for it, and when it resolves falsy (the page turned into a notice or
 * went elsewhere) the connection is abandoned. */
export function live({ onSnapshot, onEvent, units = "", opened = Promise.resolve(true) }) {
  const rid = roundId();
  const url = `/api/v1/selection/${rid}/live/`;
  const connection = connect({
    socket: `/ws/selection/${rid}/`,
    snapshot: ({ first }) => (first && units ? `${url}?units=${units}` : url),
    onSnapshot: async (data, how) => {
      if (await opened) await onSnapshot(data, how);
    },
    onEvent,
    onError: async (failure) => {
      if (await opened) await showFailure(failure);
    },
  });
  opened.then((ok) => ok || connection.abandon());
  return connection;
}
