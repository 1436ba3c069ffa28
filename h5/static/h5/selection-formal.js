/* 正选 (补选 in a supplementary session): entering (POST …/formal/enter/ is what counts as
 * "entered"), the countdown by server time, 同步预选房源 with its diff, the formal cart,
 * 确认正选 / 确认补选 (asked twice, idempotent per unit for this page load) and 主动放弃
 * (asked twice). Live (the family's socket): a unit taken by another family is marked 已被选
 * at once, the last 30 s are announced, and the close of the session or the family's result
 * moves the page on to the result. At 00:00 the page says 「正在结束，请稍候…」 until the
 * server has closed the session (its event, a snapshot, or the result read every few
 * seconds), never a stale 00:00 nor a result page that does not know the outcome yet. */
import { countdownAnnouncer } from "./lib/announce.js";
import { dialog } from "./lib/dialogs.js";
import { $, el, setBusy, toast } from "./lib/dom.js";
import { now } from "./lib/live.js";
import {
  call,
  cartUnitWithdrawn,
  fmt,
  isSupplementary,
  live,
  markTaken,
  notice,
  randomKey,
  renderCart,
  roundId,
  selectingWord,
  sessionName,
  showFailure,
  unitName,
  unitRequests,
} from "./lib/selection.js";
import { unitList } from "./lib/unit-list.js";

const rid = roundId();
const api = `/api/v1/selection/${rid}`;
const resultUrl = `/h5/selection/${rid}/result/`;
const form = $("filters");
const confirmButton = $("confirm-btn");
const giveUpButton = $("give-up-btn");

let endsAt = 0;
let sessionId = 0;
let sessionLabel = "正选进行中";
let word = "正选"; // 「补选」 in a supplementary session
let ended = false; // the window is over by the server's clock: nothing more is sent
let closing = false; // … and the page waits for the server to close the session
let leaving = false;
let lastCall = false; // the server said the last 30 s have begun
let confirming = 0; // the unit this family is confirming right now
let cart = { kind: "formal", limit: 0, items: [] };
let preCount = 0;
let preKey = ""; // the pre-selection cart's units in order, to tell whether sync would change anything
const cartKey = (items) => items.map((item) => item.unit.id).join(",");
let selected = null;
let busy = false;
const keys = new Map(); // unit id → idempotency key, reused on a retry of the same unit

// The page keeps room below its last line for the fixed bottom bar, as tall as the bar is
// drawn (app.css adds a gap): at the largest text size 「确认正选 1栋 1201」 takes two lines.
const bottomBar = document.querySelector(".anju-bottom-bar");
new ResizeObserver(() =>
  document.body.style.setProperty("--anju-bar-height", `${bottomBar.offsetHeight}px`),
).observe(bottomBar);

const inCart = () => new Set(cart.items.map((item) => item.unit.id));
const itemOf = (unitId) => cart.items.find((item) => item.unit.id === unitId);

function drawConfirm() {
  const item = selected && itemOf(selected);
  const ready = Boolean(item && item.unit.status === "available") && !ended;
  confirmButton.disabled = !ready;
  confirmButton.classList.toggle("weui-btn_disabled", !ready);
  confirmButton.textContent = ready ? `确认${word} ${unitName(item.unit)}` : `确认${word}`;
}

function drawCart() {
  if (selected && !itemOf(selected)) selected = null;
  $("cart-count").textContent = `${cart.items.length}/${cart.limit}`;
  renderCart($("cart"), cart, {
    onMove: move,
    onRemove: remove,
    pick: (unitId) => {
      selected = unitId;
      drawConfirm();
    },
    selected,
  });
  const banner = $("sync-banner");
  /* Offered while the pre-selection cart holds units the formal cart does not hold in the
   * same order: syncing stays possible after the first unit is in the formal cart. */
  banner.hidden = !(preCount > 0 && cartKey(cart.items) !== preKey);
  $("sync-banner-text").textContent =
    cart.items.length === 0
      ? `您有${preCount}套预选房源，可点击【确认同步】同步至${word}购物车。`
      : `您有${preCount}套预选房源，与${word}购物车不同；点击【确认同步】将以预选房源覆盖${word}购物车。`;
  drawConfirm();
}

/* The available units, read once per move of the round and filtered on the phone. */
const units = unitList({
  container: $("units"),
  form,
  onSelect: (unitId) => add(unitId),
  state: () => ({ inCart: inCart(), full: cart.items.length >= cart.limit }),
});

function draw() {
  drawCart();
  units.refresh();
  if (ended) freeze();
}

/* The window is over: no button of the page may look as if it still did something. */
function freeze() {
  for (const control of $("page").querySelectorAll("button, input, select")) {
    control.disabled = true;
    if (control.classList.contains("weui-btn")) control.classList.add("weui-btn_disabled");
  }
}

const unitsFetch = unitRequests(() => `${api}/units/?available=true`);

async function loadUnits({ keep = false } = {}) {
  const got = await unitsFetch.fetch();
  if (got) units.set(unitsFetch.merge(units.list, got, { keep }));
  if (ended) freeze();
}

/* The time left for screen readers: once a minute, then the last 30 s (lib/announce.js);
 * the visible 「剩余 01:23」 is a timer, not a live region. */
let announcer = null;

function tick() {
  if (closing) return;
  const left = endsAt - now();
  if (left <= 0) {
    windowEnded();
    return;
  }
  $("countdown").textContent = `剩余 ${fmt.mmss(left)}`;
  const last = lastCall || left <= 30_000;
  $("countdown-bar").classList.toggle("anju-countdown_last", last);
  $("countdown-label").textContent = last ? "最后30秒，请尽快确认" : sessionLabel;
  $("last-call").hidden = !last || ended;
  if (announcer) announcer.update(left, { last: lastCall });
}

/* To the result page, once: the session closed, or the family has its result. */
function leave() {
  if (leaving) return;
  leaving = true;
  ended = true;
  drawConfirm();
  window.location.replace(resultUrl);
}

/* Another family took a unit: 已被选 in the cart and the list, its radio and 【选择】
 * disabled; a word when it was one of this family's. */
function unitTaken(unit) {
  const mine = itemOf(unit.id);
  if (!markTaken(unit.id, cart.items, units.list)) return;
  if (selected === unit.id) selected = null;
  drawCart();
  units.redraw(unit.id);
  if (ended) freeze();
  if (mine && confirming !== unit.id) toast(`${unitName(unit)} 已被其他家庭选定`, { ms: 2500 });
}

const ofThisSession = (event, stream) =>
  stream.startsWith("session.") && event.data.session && event.data.session.id === sessionId;

/* Staff withdrew (撤回) or restored a unit: the server already took it out of the formal
 * cart. Redraw from the server's cart and list; the family whose cart held it is told. */
async function unitWithdrawn(unit, mine) {
  try {
    const [current, got] = await Promise.all([call("GET", `${api}/cart/formal/`), unitsFetch.fetch()]);
    if (!busy) cart = current;
    if (got) units.set(unitsFetch.merge(units.list, got, { keep: true }));
    if (selected === unit.id && !itemOf(unit.id)) selected = null;
    draw();
  } catch (failure) {
    await showFailure(failure);
    return;
  }
  if (mine) cartUnitWithdrawn(unit);
}

function onLive(event, stream) {
  switch (event.type) {
    case "selection.unit_taken":
      unitTaken(event.data.unit);
      break;
    case "selection.cart_unit_withdrawn":
      unitWithdrawn(event.data.unit, true);
      break;
    case "selection.unit_withdrawn":
    case "selection.unit_restored":
      unitWithdrawn(event.data.unit, false);
      break;
    case "selection.session_last_call":
      if (ofThisSession(event, stream) && !lastCall) {
        lastCall = true;
        tick();
      }
      break;
    case "selection.session_closed":
      if (ofThisSession(event, stream)) leave();
      break;
    case "selection.result_assigned":
    case "selection.gave_up":
      leave();
      break;
    default:
  }
}

/* The snapshot (on connect, on reconnect, and every 3 s while polling): the phase, the
 * session's end, the carts with each unit's status; the list again when the round moved.
 * The first snapshot brings the list the page opens with (read after its heads; read
 * before them, the list would have to be read again: issue 16, each page's data once). */
async function onSnapshot(data, { first, moved }) {
  if (data.allocation || data.phase === "allocated" || data.phase === "gave_up") {
    leave();
    return;
  }
  if (data.phase !== "formal" || (data.session && data.session.id !== sessionId)) {
    /* By the server's clock this window is over; the close may not have run yet. */
    if (first) reveal();
    windowEnded();
    return;
  }
  if (data.session) endsAt = Date.parse(data.session.ends_at);
  if (!busy) {
    cart = { ...cart, items: data.carts.formal };
    preCount = data.carts.pre.length;
    preKey = cartKey(data.carts.pre);
  }
  if (data.units) {
    units.set(unitsFetch.merge(units.list, unitsFetch.arrived(data.units), { keep: true }));
  } else if (first || moved.has(`round.${rid}`)) {
    try {
      await loadUnits({ keep: true });
    } catch (failure) {
      /* later: the next snapshot tries again */
      if (first) {
        $("loading").hidden = true;
        await handle(failure);
        return;
      }
    }
  }
  if (first) reveal();
  draw();
}

function reveal() {
  $("loading").hidden = true;
  $("page").hidden = false;
}

/* The window is over: say so instead of 00:00 and wait for the server's close (the
 * auto-assignment), heard as an event, seen in a snapshot, or read from the result. */
const CLOSE_CHECK_MS = [1000, 2000, 3000, 5000]; // then every 5 s
function windowEnded() {
  if (closing || leaving) return;
  closing = true;
  ended = true;
  drawConfirm();
  freeze();
  const bar = $("countdown-bar");
  bar.classList.remove("anju-countdown_last");
  bar.classList.add("anju-countdown_closing");
  $("countdown-label").textContent = `${word}时间已结束`;
  $("countdown").textContent = "正在结束，请稍候…";
  const line = $("last-call");
  line.textContent = "系统正在按购物车中的意向排序为您自动选定房源，完成后本页将自动显示选房结果。";
  line.classList.add("anju-last-call_closing");
  line.hidden = false;
  if (announcer) announcer.now(`${word}时间已结束，${line.textContent}`);
  checkClosed(0);
}

async function checkClosed(round) {
  if (leaving) return;
  const wait = CLOSE_CHECK_MS[Math.min(round, CLOSE_CHECK_MS.length - 1)];
  await new Promise((resolve) => setTimeout(resolve, wait));
  if (leaving) return;
  try {
    const result = await call("GET", `${api}/result/`);
    const mine = (result.sessions || []).find((s) => s.id === sessionId);
    if (result.allocation || result.gave_up || !mine || mine.status === "closed" || mine.outcome) {
      leave();
      return;
    }
  } catch {
    /* the next check tries again */
  }
  checkClosed(round + 1);
}

/* One change at a time; the formal cart is redrawn from the API's answer. */
async function change(request, done) {
  if (busy || ended) return;
  busy = true;
  try {
    cart = await request();
    draw();
    if (done) toast(done);
  } catch (failure) {
    await handle(failure);
  } finally {
    busy = false;
  }
}

async function handle(failure) {
  await showFailure(failure);
  const code = failure.error && failure.error.code;
  if (code === "already_allocated" || code === "window_closed" || code === "gave_up") {
    window.location.replace(resultUrl);
  } else if (code === "unit_taken") {
    await loadUnits();
  }
}

const add = (unitId) =>
  change(
    () => call("POST", `${api}/cart/formal/items/`, { unit_id: unitId }),
    "已加入购物车",
  );
const move = (unitId, direction) =>
  change(() => call("POST", `${api}/cart/formal/items/${unitId}/move/`, { direction }));
const remove = (unitId) =>
  change(() => call("DELETE", `${api}/cart/formal/items/${unitId}/`), "已删除");

function list(items) {
  return el(
    "ol",
    { class: "anju-dialog__list" },
    items.map((item) => el("li", { text: unitName(item.unit) })),
  );
}

/* 同步预选房源: show what the sync would overwrite, then overwrite on 「确认同步」. */
async function syncCart() {
  if (busy || ended) return;
  busy = true;
  try {
    const diff = await call("GET", `${api}/formal/sync/`);
    const body = el("div", { class: "anju-sync-diff" });
    if (diff.removed.length) {
      body.append(
        el("p", { text: `以下${word}页面新选择的房源将被预选房源覆盖：` }),
        el(
          "ul",
          { class: "anju-dialog__list anju-dialog__list_removed" },
          diff.removed.map((item) => el("li", { text: unitName(item.unit) })),
        ),
      );
    }
    if (diff.pre.length) {
      body.append(el("p", { text: "同步后的意向排序：" }), list(diff.pre));
    } else {
      body.append(el("p", { text: `预选购物车为空，同步后${word}购物车将被清空。` }));
    }
    const ok = await dialog({
      title: "同步预选房源",
      body,
      buttons: [
        { label: "取消", value: false, kind: "default" },
        { label: "确认同步", value: true },
      ],
    });
    if (!ok) return;
    cart = await call("POST", `${api}/formal/sync/`);
    draw();
    toast("已同步预选房源");
  } catch (failure) {
    await handle(failure);
  } finally {
    busy = false;
  }
}

/* 确认正选 / 确认补选: asked a second time; the key makes a repeated tap (and a resend
 * after a busy answer) the same request. */
async function confirmUnit() {
  const item = selected && itemOf(selected);
  if (!item || busy || ended) return;
  const name = unitName(item.unit);
  const ok = await dialog({
    title: `确认${word}`,
    body: `提交后选房结果不可更改，确认选定 ${name} 吗？`,
    buttons: [
      { label: "取消", value: false, kind: "default" },
      { label: "确认选定", value: true },
    ],
  });
  if (!ok || ended) return;
  const unitId = item.unit.id;
  if (!keys.has(unitId)) keys.set(unitId, randomKey());
  busy = true;
  confirming = unitId;
  setBusy(confirmButton, true, "正在提交…");
  try {
    await call("POST", `${api}/confirm/`, { unit_id: unitId, idempotency_key: keys.get(unitId) });
    window.location.replace(resultUrl);
  } catch (failure) {
    setBusy(confirmButton, false);
    busy = false;
    confirming = 0;
    if (failure.error && failure.error.code === "unit_taken") {
      item.unit.status = "taken";
      selected = null;
      drawCart();
      await showFailure(failure);
      await loadUnits();
      return;
    }
    await handle(failure);
    drawConfirm();
  }
}

/* 主动放弃: two askings, the second bringing back the server's token. */
async function giveUp() {
  if (busy || ended) return;
  const first = await dialog({
    title: "主动放弃",
    body: "确定要主动放弃本次选房吗？",
    buttons: [
      { label: "取消", value: false, kind: "default" },
      { label: "放弃选房", value: true, kind: "warn" },
    ],
  });
  if (!first) return;
  busy = true;
  try {
    const { token } = await call("POST", `${api}/give-up/intent/`);
    const second = await dialog({
      title: "再次确认",
      body: "放弃后不能申请补选，确定放弃？",
      buttons: [
        { label: "再想想", value: false, kind: "default" },
        { label: "确定放弃", value: true, kind: "warn" },
      ],
    });
    if (!second) return;
    await call("POST", `${api}/give-up/`, { token });
    window.location.replace(resultUrl);
  } catch (failure) {
    await handle(failure);
  } finally {
    busy = false;
  }
}

/* Entering formal selection (the window, the session, the formal cart's limit), while
 * the live socket connects; true when the page goes on with the list. */
async function start() {
  const page = $("page");
  let entered;
  try {
    entered = await call("POST", `${api}/formal/enter/`);
  } catch (failure) {
    $("loading").hidden = true;
    const code = failure.error && failure.error.code;
    if (code === "declaration_required" || code === "window_not_open") {
      // Before the window the declaration page says when it opens and counts down to it.
      window.location.replace(`/h5/selection/${rid}/declaration/formal/`);
      return false;
    }
    if (code === "already_allocated" || code === "gave_up") {
      window.location.replace(resultUrl);
      return false;
    }
    if (failure.status === 401 || failure.redirecting) {
      await showFailure(failure);
      return false;
    }
    notice(page.parentElement, {
      title: (failure.error && failure.error.message) || "无法进入选房",
      links: [
        ["返回", `/h5/selection/${rid}/`],
        ["我的选房结果", resultUrl],
      ],
    });
    return false;
  }
  endsAt = Date.parse(entered.session.ends_at);
  sessionId = entered.session.id;
  word = selectingWord(entered.session);
  if (isSupplementary(entered.session)) {
    document.querySelector(".anju-titlebar__title").textContent = "补选";
    document.title = document.title.replace("正式选房", "补选");
    $("last-call").textContent =
      "补选时间仅剩最后30秒，请尽快确认；时间结束未确认的，系统将按购物车排序自动选定。";
    $("formal-tips").textContent =
      "选中一套房源后点击【确认补选】。补选时间结束仍未确认的，系统将自动选定购物车中排序最前且未被选定的房源。";
  }
  sessionLabel = isSupplementary(entered.session)
    ? "补选场次 · 补选进行中"
    : `${sessionName(entered.session)} · 正选进行中`;
  announcer = countdownAnnouncer({
    phrase: (t) => `${word}时间剩余${t}`,
    lastCall: `请尽快确认${word}；时间结束未确认的，系统将按购物车排序自动选定`,
  });
  tick();
  setInterval(tick, 250);
  // Entering answers with the formal cart (its limit); the items, and the pre-selection
  // cart, come with every live snapshot from here on.
  cart = entered.cart;
  return true;
}

$("sync-btn").addEventListener("click", syncCart);
$("sync-now").addEventListener("click", syncCart);
confirmButton.addEventListener("click", confirmUnit);
giveUpButton.addEventListener("click", giveUp);

live({ onSnapshot, onEvent: onLive, units: "available", opened: start() });
