/* 预选: filters, the unit list with 【选择】, the pre-selection cart with 上移 / 下移 / 置顶 /
 * 删除. Every change goes to the API; the page redraws from what it answers. Live (the
 * family's socket): units taken by families ranked earlier are marked 已被选 at once; when
 * the family's session opens (or pre-selection otherwise ends) the page says where to go.
 * In the last hour before the family's session, 「距正选开始 mm:ss」 counts down by the
 * server's clock, announced to screen readers once a minute (lib/announce.js). */
import { countdownAnnouncer } from "./lib/announce.js";
import { $, toast } from "./lib/dom.js";
import {
  call,
  cartUnitWithdrawn,
  clock,
  fmt,
  live,
  markTaken,
  notice,
  renderCart,
  roundId,
  selectingWord,
  showFailure,
  unitName,
  unitRequests,
} from "./lib/selection.js";
import { unitList } from "./lib/unit-list.js";

const rid = roundId();
const api = `/api/v1/selection/${rid}`;
const form = $("filters");

let cart = { kind: "pre", limit: 0, items: [] };
let busy = false;
let over = false; // pre-selection has ended for this family: the page shows a notice

const inCart = () => new Set(cart.items.map((item) => item.unit.id));

function drawCart() {
  if (over) return;
  $("cart-count").textContent = `${cart.items.length}/${cart.limit}`;
  renderCart($("cart"), cart, { onMove: move, onRemove: remove });
}

/* The whole round's list, read once per move of the round and filtered on the phone. */
const units = unitList({
  container: $("units"),
  form,
  onSelect: (unitId) => add(unitId),
  state: () => ({ inCart: inCart(), full: cart.items.length >= cart.limit }),
});

function draw() {
  if (over) return;
  drawCart();
  units.refresh();
}

const unitsFetch = unitRequests(() => `${api}/units/`);

async function loadUnits({ keep = false } = {}) {
  const got = await unitsFetch.fetch();
  if (got) units.set(unitsFetch.merge(units.list, got, { keep }));
}

/* One change at a time: a second tap while the first is on its way is ignored. */
async function change(request, done) {
  if (busy) return;
  busy = true;
  try {
    cart = await request();
    draw();
    if (done) toast(done);
  } catch (failure) {
    await showFailure(failure);
    if (failure.error && failure.error.code === "unit_taken") await loadUnits();
  } finally {
    busy = false;
  }
}

function add(unitId) {
  return change(() => call("POST", `${api}/cart/pre/items/`, { unit_id: unitId }), "已加入购物车");
}

function move(unitId, direction) {
  return change(() =>
    call("POST", `${api}/cart/pre/items/${unitId}/move/`, { direction }),
  );
}

function remove(unitId) {
  return change(() => call("DELETE", `${api}/cart/pre/items/${unitId}/`), "已删除");
}

/* Pre-selection is not (or no longer) open: say why and where to go. */
let noticeBox = null; // where the notice goes (the page itself is replaced by it)
let noticeTimer = null;

function phaseNotice(state) {
  over = true;
  const loading = $("loading"); // gone once a first notice replaced the page
  if (loading) loading.hidden = true;
  noticeBox = noticeBox || $("page").parentElement;
  clearTimeout(noticeTimer);
  if (state.phase === "formal" && state.session) {
    /* The session closes: the notice must not keep saying 「去选房」. */
    const wait = Date.parse(state.session.ends_at) - clock.now() + 500;
    noticeTimer = setTimeout(async () => {
      try {
        phaseNotice(await call("GET", `${api}/state/`));
      } catch (failure) {
        await showFailure(failure);
      }
    }, Math.max(wait, 500));
  }
  const word = selectingWord(state.session);
  const links =
    state.phase === "formal"
      ? [
          ["去选房", `/h5/selection/${rid}/declaration/formal/`],
          ["返回", `/h5/selection/${rid}/`],
        ]
      : state.phase === "pre" || state.phase === "not_started"
        ? [["返回", `/h5/selection/${rid}/`]]
        : [
            ["我的选房结果", `/h5/selection/${rid}/result/`],
            ["返回", `/h5/selection/${rid}/`],
          ];
  const title = state.phase === "not_started" ? "预选尚未开始" : "预选已结束";
  const desc =
    state.phase === "not_started"
      ? `预选将于${fmt.dateTime(state.round.preselect_starts_at)}开始`
      : state.phase === "formal"
        ? `您的${word}时间已开始，请勾选声明后进入${word}页面`
        : "您的选房场次已结束，请查看选房结果。";
  notice(noticeBox, { title, desc, links });
  return `${title}，${desc}`;
}

/* A phase event or a snapshot says the phase moved: read the state and show the way on. */
async function phaseMoved() {
  if (over) return;
  try {
    const state = await call("GET", `${api}/state/`);
    if (state.phase === "pre") return;
    const said = phaseNotice(state);
    /* A screen reader hears the page move on at once: the countdown's live region must not
     * be left holding its last words (「距正选开始还有10秒」). */
    if (announcer) announcer.now(said);
  } catch (failure) {
    await showFailure(failure);
  }
}

function unitTaken(unit) {
  const mine = cart.items.some((item) => item.unit.id === unit.id);
  if (!markTaken(unit.id, cart.items, units.list)) return;
  drawCart();
  units.redraw(unit.id);
  if (mine) toast(`购物车中的 ${unitName(unit)} 已被其他家庭选定`, { ms: 2500 });
}

/* Staff withdrew (撤回) or restored a unit: the server already took it out of every open
 * cart. Redraw from the server's cart and list; the family whose cart held it is told. */
async function unitWithdrawn(unit, mine) {
  try {
    const [current, got] = await Promise.all([call("GET", `${api}/cart/pre/`), unitsFetch.fetch()]);
    if (!busy) cart = current;
    if (got) units.set(unitsFetch.merge(units.list, got));
    draw();
  } catch (failure) {
    await showFailure(failure);
    return;
  }
  if (mine) cartUnitWithdrawn(unit);
}

function onLive(event, stream) {
  if (over) return;
  switch (event.type) {
    case "selection.unit_taken":
      unitTaken(event.data.unit);
      break;
    case "selection.cart_unit_withdrawn":
      return unitWithdrawn(event.data.unit, true);
    case "selection.unit_withdrawn":
    case "selection.unit_restored":
      return unitWithdrawn(event.data.unit, false);
    case "selection.session_opened":
    case "selection.session_closed":
      if (stream.startsWith("session.")) return phaseMoved();
      break;
    case "selection.session_rescheduled":
      if (stream.startsWith("session.")) return sessionRescheduled();
      break;
    case "selection.result_assigned":
    case "selection.gave_up":
      return phaseMoved();
    default:
  }
  return undefined;
}

/* The snapshot: the cart, and the list again when the round moved. The first snapshot
 * brings the list the page opens with (read after its heads; read before them, the list
 * would have to be read again: issue 16, each page's data once). */
async function onSnapshot(data, { first, moved }) {
  if (over) return;
  if (data.phase !== "pre") {
    await phaseMoved();
    return;
  }
  if (!busy) cart = { ...cart, items: data.carts.pre };
  if (data.units) {
    units.set(unitsFetch.merge(units.list, unitsFetch.arrived(data.units), { keep: true }));
  } else if (first || moved.has(`round.${rid}`)) {
    try {
      await loadUnits({ keep: true });
    } catch (failure) {
      /* later: the next snapshot tries again */
      if (first) {
        $("loading").hidden = true;
        await showFailure(failure);
        return;
      }
    }
  }
  if (first) {
    $("loading").hidden = true;
    $("page").hidden = false;
  }
  draw();
}

function drawPhasebar(state) {
  const next = state.next_session;
  const word = selectingWord(next); // 「补选」 before a supplementary session
  $("phasebar").textContent = next ? `预选进行中 · 您的${word}时间 ${fmt.window(next)}` : "预选进行中";
  $("pre-tips").textContent =
    `请慎重选择意向排序。${word}时间内未选定房源的，时间结束时系统将按同步后的意向排序自动选定。`;
  nextSession = next || null;
  tick();
}

/* 「距正选开始 12:34」 in the last hour before the family's session, by the server's clock;
 * said to screen readers once a minute, and at 30 / 20 / 10 s. At 00:00 it goes: the
 * session's opening (its event) turns the page into the way to formal selection. */
const COUNTDOWN_WITHIN_MS = 3600 * 1000;
let nextSession = null;
let announcer = null;

function tick() {
  const node = $("pre-countdown");
  if (!node) return; // the page became a notice
  const left = nextSession && !over ? Date.parse(nextSession.starts_at) - clock.now() : 0;
  if (!(left > 0 && left <= COUNTDOWN_WITHIN_MS)) {
    node.hidden = true;
    return;
  }
  const word = selectingWord(nextSession);
  node.hidden = false;
  node.textContent = `距${word}开始 ${fmt.mmss(left)}`;
  if (!announcer) {
    announcer = countdownAnnouncer({
      phrase: (t) => `距${word}开始还有${t}`,
      lastCall: "预选即将结束，请确认购物车中的意向排序",
    });
  }
  announcer.update(left);
}
setInterval(tick, 250);

/* Staff moved this family's session (改期): show the new time. */
async function sessionRescheduled() {
  try {
    const state = await call("GET", `${api}/state/`);
    if (state.phase !== "pre") phaseNotice(state);
    else drawPhasebar(state);
  } catch (failure) {
    await showFailure(failure);
  }
}

/* The state (the cart's limit, the family's session), read while the live socket
 * connects; true when the page goes on with the list. */
async function start() {
  try {
    const state = await call("GET", `${api}/state/`);
    if (state.phase !== "pre") {
      phaseNotice(state);
      return false;
    }
    if (!state.declared_pre) {
      window.location.replace(`/h5/selection/${rid}/declaration/pre/`);
      return false;
    }
    drawPhasebar(state);
    // The cart's items come with the live snapshot (the page's data once, issue 16 item 1).
    cart = { ...cart, limit: state.round.cart_limit };
    return true;
  } catch (failure) {
    $("loading").hidden = true;
    await showFailure(failure);
    return false;
  }
}

live({ onSnapshot, onEvent: onLive, units: "all", opened: start() });
