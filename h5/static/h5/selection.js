/* 网上选房 shared helpers: API calls that set the clock (live.js), time formats, the unit
 * list and the cart, the family's live socket. Pages only render what the API returns and send the applicant's choices to it; every
 * rule (phase, eligibility, limits, who wins) is the server's. Exposed as window.Anju.sel. */
(() => {
  "use strict";

  const { api, el, alert, LOGIN_URL } = window.Anju;
  const TZ = "Asia/Shanghai"; // the server's zone: times read the same on every phone

  /* Server time is the only clock: Anju.Live's (live.js), fed by the socket's pings and by
   * every API answer that carries server_time_ms. */
  const clock = window.Anju.Live.clock;

  async function call(method, url, body) {
    const sentAt = Date.now();
    const data = await api(method, url, body);
    if (data && typeof data.server_time_ms === "number") {
      clock.sample(data.server_time_ms, sentAt, Date.now());
    }
    return data;
  }

  function parts(value, options) {
    const date = typeof value === "number" ? new Date(value) : new Date(Date.parse(value));
    const out = {};
    for (const { type, value: v } of new Intl.DateTimeFormat("zh-CN", {
      timeZone: TZ,
      hourCycle: "h23",
      ...options,
    }).formatToParts(date)) {
      out[type] = v;
    }
    return out;
  }

  const fmt = {
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
    /* 「2026年3月3日 09:30:05」: the one format of every page (app.js), to the second here. */
    dateTime(value) {
      return window.Anju.fmt.dateTime(value, { seconds: true });
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
  const isSupplementary = (session) => Boolean(session) && session.kind === "supplementary";
  const sessionName = (session) => (isSupplementary(session) ? "补选场次" : `第${session.order}场`);
  const selectingLabel = (session) => (isSupplementary(session) ? "补选进行中" : "正选进行中");
  const selectingWord = (session) => (isSupplementary(session) ? "补选" : "正选");

  const unitName = (unit) => `${unit.building}栋 ${unit.number}`;
  const unitDesc = (unit) =>
    [
      unit.layout_label,
      `朝${unit.orientation_label}`,
      `${unit.floor}层`,
      `${unit.area}㎡`,
      unit.monthly_rent ? `月租${Number(unit.monthly_rent)}元` : null,
    ]
      .filter(Boolean)
      .join(" · ");

  /* Show an API refusal: the login page for an ended session, else a dialog with the
   * server's Chinese message. */
  async function showFailure(failure) {
    if (failure && failure.redirecting) return;
    if (failure && failure.status === 401) {
      window.location.replace(LOGIN_URL);
      return;
    }
    const message = (failure && failure.error && failure.error.message) || "系统繁忙，请稍后再试";
    await alert(message);
  }

  /* A notice in place of a page whose phase is not open, with a way on. */
  function notice(container, { title, desc, links = [] }) {
    container.replaceChildren(
      el(
        "div",
        { class: "weui-msg anju-notice", role: "status" },
        el("div", { class: "weui-msg__icon-area" }, el("i", { class: "weui-icon-info weui-icon_msg" })),
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
  function renderCart(container, cart, { onMove, onRemove, pick = null, selected = null }) {
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
            el(
              "div",
              { class: "anju-cart__main" },
              pick
                ? el(
                    "label",
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
                  taken
                    ? el("span", { class: "anju-tag anju-tag_taken", text: "已被选" })
                    : null,
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

  /* Why 【选择】 is not available for a unit, or "" when it is. */
  function selectBlocked(unit, inCart, full) {
    if (unit.status === "taken") return "已被选";
    if (inCart.has(unit.id)) return "已加入";
    if (unit.status !== "available") return unit.status_label || "不可选";
    if (!unit.eligible) return "户型不符";
    if (full) return "已满";
    return "";
  }

  /* The unit list, each with 【选择】 or the reason it cannot be chosen. 「只看可选」 keeps a
   * unit taken while the list was on screen, marked 已被选, so that no row moves under a
   * finger; it goes at the next reload of the list. */
  function renderUnits(container, units, { inCart, full, onSelect, onlyOpen }) {
    const shown = onlyOpen
      ? units.filter((u) => (u.status === "available" && u.eligible) || u.takenLive)
      : units;
    if (!shown.length) {
      container.replaceChildren(el("p", { class: "anju-empty", text: "没有符合条件的房源" }));
      return;
    }
    container.replaceChildren(
      el(
        "ul",
        { class: "anju-units", "aria-label": "房源列表" },
        shown.map((unit) => {
          const blocked = selectBlocked(unit, inCart, full);
          const name = unitName(unit);
          return el(
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
                el("span", { text: name }),
                unit.status === "taken"
                  ? el("span", { class: "anju-tag anju-tag_taken", text: "已被选" })
                  : null,
              ),
              el("p", { class: "anju-unit__desc", text: unitDesc(unit) }),
            ),
            blocked
              ? el("button", {
                  type: "button",
                  class: "weui-btn weui-btn_mini weui-btn_default weui-btn_disabled anju-units__btn",
                  disabled: true,
                  "aria-label": `${name} ${blocked}`,
                  text: blocked,
                })
              : el("button", {
                  type: "button",
                  class: "weui-btn weui-btn_mini weui-btn_primary anju-units__btn",
                  "aria-label": `选择 ${name}`,
                  text: "选择",
                  onclick: (event) => onSelect(unit.id, event.currentTarget),
                }),
          );
        }),
      ),
    );
  }

  /* The 楼栋 / 户型 / 朝向 selects, filled from …/unit-filters/. */
  function fillFilters(form, filters) {
    const fill = (name, options) => {
      const select = form.elements[name];
      select.replaceChildren(
        el("option", { value: "", text: "全部" }),
        ...options.map(([value, label]) => el("option", { value, text: label })),
      );
    };
    fill(
      "building",
      filters.buildings.map((b) => [b, `${b}栋`]),
    );
    fill(
      "layout",
      filters.layouts.map((o) => [o.value, o.label]),
    );
    fill(
      "orientation",
      filters.orientations.map((o) => [o.value, o.label]),
    );
  }

  function unitsQuery(form, extra = {}) {
    const params = new URLSearchParams();
    for (const name of ["building", "layout", "orientation"]) {
      const value = form.elements[name].value;
      if (value) params.set(name, value);
    }
    for (const [key, value] of Object.entries(extra)) params.set(key, value);
    const query = params.toString();
    return query ? `?${query}` : "";
  }

  /* A page's unit list requests. Answers arrive out of order (a filter change and a live
   * refresh in flight together): only the latest request's answer is used. And rows taken
   * live are kept (keepRows) only when the answer is for the filters the shown list came
   * from: an answer for other filters replaces the list, since the rows it leaves out are
   * filtered out, not taken. */
  function unitRequests(urlOf) {
    let latest = 0;
    let shown = null; // the URL the page's list came from
    return {
      async fetch() {
        const mine = ++latest;
        const url = urlOf();
        const list = await call("GET", url);
        return mine === latest ? { url, list } : null;
      },
      merge(rows, got, { keep = false } = {}) {
        const next = keep && got.url === shown ? keepRows(rows, got.list) : got.list;
        shown = got.url;
        return next;
      },
    };
  }

  /* A random key for one confirm attempt (crypto.randomUUID needs a secure context). */
  function randomKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* A unit was just taken (a live event): mark it 已被选 wherever the page holds it (cart
   * items, unit lists). True when something changed. Idempotent. */
  function markTaken(unitId, ...lists) {
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
  function keepRows(before, after) {
    const open = new Set(
      before.filter((u) => u.status === "available" || u.takenLive).map((u) => u.id),
    );
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

  /* The family's selection socket for this round (docs/REALTIME.md): its snapshot is
   * GET …/live/ (heads, phase, session, carts, allocation). */
  function live({ onSnapshot, onEvent }) {
    const rid = roundId();
    return window.Anju.Live.connect({
      socket: `/ws/selection/${rid}/`,
      snapshot: `/api/v1/selection/${rid}/live/`,
      onSnapshot,
      onEvent,
      onError: showFailure,
    });
  }

  function roundId() {
    return Number(document.getElementById("selection").dataset.roundId);
  }

  window.Anju.sel = {
    clock,
    call,
    fmt,
    isSupplementary,
    sessionName,
    selectingLabel,
    selectingWord,
    unitName,
    unitDesc,
    showFailure,
    notice,
    renderCart,
    renderUnits,
    fillFilters,
    unitsQuery,
    randomKey,
    roundId,
    markTaken,
    keepRows,
    unitRequests,
    live,
  };
})();
