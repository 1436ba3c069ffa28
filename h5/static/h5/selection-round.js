/* 网上选房 for one round: the phase by server time, the family's session, and the way on.
 * The phase moves on at its boundaries by the server's clock, and at once when the family's
 * socket says a session opened or closed or the family has its result. While the family's
 * window runs, the time left is said to screen readers once a minute and in the last 30 s
 * (lib/announce.js); the tips that show it every second are not a live region. */
import { countdownAnnouncer } from "./lib/announce.js";
import { $ } from "./lib/dom.js";
import {
  call,
  clock,
  fmt,
  isSupplementary,
  live,
  roundId,
  selectingLabel,
  selectingWord,
  sessionName,
  showFailure,
} from "./lib/selection.js";

const rid = roundId();
const base = `/h5/selection/${rid}`;

const PHASES = {
  not_started: "预选未开始",
  pre: "预选进行中",
  formal: "正选进行中",
  allocated: "已选定房源",
  gave_up: "已主动放弃",
  ended: "选房场次已结束",
};

const ENDED = ["allocated", "gave_up", "ended"];

let state = null;
let refreshTimer = null;

function sessionOf(state, result) {
  if (state.session) return state.session;
  if (state.next_session) return state.next_session;
  const sessions = (result && result.sessions) || [];
  return sessions.length ? sessions[sessions.length - 1] : null;
}

function tips(state, result) {
  const next = state.next_session;
  /* Past a boundary by the server's clock, until the state read there answers: say so,
   * never 「剩余 00:00」 or a start time already gone. */
  if (state.phase === "formal" && Date.parse(state.session.ends_at) <= clock.now()) {
    return "正在结束，请稍候…";
  }
  if (state.phase === "pre" && next && Date.parse(next.starts_at) <= clock.now()) {
    return "正在开启，请稍候…";
  }
  switch (state.phase) {
    case "not_started":
      return `预选将于${fmt.dateTime(state.round.preselect_starts_at)}开始。`;
    case "pre":
      return next
        ? `请于${fmt.dateTime(next.starts_at)}${selectingWord(next)}开始前完成预选；${selectingWord(next)}开始后，请勾选声明并进入选房页面确认选房。`
        : "请完成预选。";
    case "formal":
      return `您的${selectingWord(state.session)}时间剩余 ${fmt.mmss(Date.parse(state.session.ends_at) - clock.now())}，请立即开始选房。`;
    case "allocated":
      return "您已选定房源，可查看选房结果并办理签约。";
    case "gave_up":
      return "您已主动放弃本次选房。";
    default: {
      const supplementary = result && result.supplementary;
      if (supplementary && supplementary.can_apply) {
        // No unit, and 补选 may still be applied for: what to do next, and until when.
        const until = supplementary.deadline ? `请于${fmt.dateTime(supplementary.deadline)}前` : "可";
        return `您的选房场次已结束，未选定房源。如需补选，${until}点击下方「补选申请」提交申请。`;
      }
      if (supplementary && supplementary.applied_at && !supplementary.session) {
        // Applied, waiting for staff: the result page's words, not 「可查看选房结果」 alone.
        return "您的选房场次已结束，未选定房源。您已提交补选申请，补选场次待工作人员安排，安排后将以短信通知您。";
      }
      if (supplementary && supplementary.closed && supplementary.deadline) {
        return `您的选房场次已结束，未选定房源。补选申请已于${fmt.dateTime(supplementary.deadline)}截止。`;
      }
      return "您的选房场次已结束，可查看选房结果。";
    }
  }
}

function startTarget(state) {
  if (state.phase === "pre") return `${base}/declaration/pre/`;
  if (state.phase === "formal") return `${base}/declaration/formal/`;
  return "";
}

function render(result) {
  const session = sessionOf(state, result);
  $("phase").textContent =
    state.phase === "formal" ? selectingLabel(state.session) : PHASES[state.phase] || state.phase;
  $("session-label").textContent = isSupplementary(session) ? "我的补选场次" : "我的正选场次";
  $("window-label").textContent = isSupplementary(session) ? "补选时长" : "正选时长";
  $("session-time").textContent = session
    ? `${sessionName(session)} ${fmt.window(session)}`
    : "暂未安排";
  $("window-length").textContent = `${Math.round(state.round.window_seconds / 60)}分钟`;
  $("cart-limit").textContent = `${state.round.cart_limit}套`;
  $("phase-tips").textContent = tips(state, result);
  const start = $("start-btn");
  const target = startTarget(state);
  start.disabled = !target;
  start.classList.toggle("weui-btn_disabled", !target);
  start.dataset.target = target;
  // A family whose session is over has nothing to start (a 补选 session brings it back): its
  // next step is the result or 补选申请, not a grey button with no reason on it.
  start.hidden = ENDED.includes(state.phase);
  const canApply = Boolean(result && result.supplementary.can_apply);
  $("supplementary-btn").hidden = !canApply;
  // The family's next step is the green button: 开始选房 while a phase is open, 补选申请
  // while it may be applied for, the result (and 去签约 on it) once a unit is chosen.
  primary($("supplementary-btn"), canApply);
  primary($("result-btn"), state.phase === "allocated");
  // Green says a phase runs or a unit is chosen; a session over without one is not success.
  $("phase").classList.toggle("anju-phase_over", ["gave_up", "ended"].includes(state.phase));
}

function primary(button, on) {
  button.classList.toggle("weui-btn_primary", on);
  button.classList.toggle("weui-btn_default", !on);
}

/* At the next boundary (pre-selection opens, the session opens or closes) read the
 * state again, so the page moves on without a refresh. */
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const at =
    state.phase === "not_started"
      ? state.round.preselect_starts_at
      : state.phase === "pre" && state.next_session
        ? state.next_session.starts_at
        : state.phase === "formal"
          ? state.session.ends_at
          : null;
  if (!at) return;
  const wait = Date.parse(at) - clock.now() + 500;
  // A boundary already passed that the server has not moved past yet: read again shortly.
  if (wait < 6 * 3600 * 1000) refreshTimer = setTimeout(load, wait > 0 ? wait : 1000);
}

async function load() {
  try {
    // Two reads that do not depend on each other, side by side: one round trip, not two.
    const [read, result] = await Promise.all([
      call("GET", `/api/v1/selection/${rid}/state/`),
      call("GET", `/api/v1/selection/${rid}/result/`),
    ]);
    state = read;
    render(result);
    tick();
    scheduleRefresh();
  } catch (failure) {
    await showFailure(failure);
  }
}

let announcer = null;

function tick() {
  if (!clock.synced) return;
  $("server-clock").textContent = `服务器时间 ${fmt.time(clock.now())}`;
  if (state && (state.phase === "formal" || state.phase === "pre")) {
    $("phase-tips").textContent = tips(state);
  }
  if (state && state.phase === "formal" && state.session) {
    const word = selectingWord(state.session);
    if (!announcer) {
      announcer = countdownAnnouncer({
        phrase: (t) => `您的${word}时间剩余${t}`,
        lastCall: "请尽快进入选房页面确认",
      });
    }
    announcer.update(Date.parse(state.session.ends_at) - clock.now());
  }
}

function onLive(event, stream) {
  switch (event.type) {
    case "selection.preselect_opened":
    case "selection.result_assigned":
    case "selection.gave_up":
      return load();
    case "selection.session_opened":
    case "selection.session_closed":
    case "selection.session_rescheduled": // staff moved this family's session: new times
      return stream.startsWith("session.") ? load() : undefined;
    default:
      return undefined;
  }
}

function onSnapshot(data) {
  return state && data.phase !== state.phase ? load() : undefined;
}

$("start-btn").addEventListener("click", (event) => {
  const target = event.currentTarget.dataset.target;
  if (target) window.location.assign(target);
});
setInterval(tick, 500);
// The live socket connects while the state is read; without a state (the read was
// refused) it is abandoned.
live({ onSnapshot, onEvent: onLive, opened: load().then(() => Boolean(state)) });
