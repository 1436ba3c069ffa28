/* The declaration page: the text the server serves, 「上述条款，我已阅知」, then
 * 【开始预选】 or 【去选房】, enabled only when ticked (lib/declaration.js). The acknowledgement
 * is recorded by the API with the text's version. Formal: before the window, when it opens
 * and a countdown to it (server clock); at 00:00 「正在开启，请稍候…」 until the server says
 * the window is open. */

import { declaration } from "./lib/declaration.js";
import { el } from "./lib/dom.js";
import { call, clock, fmt, roundId, selectingWord, showFailure } from "./lib/selection.js";

const rid = roundId();
const phase = document.getElementById("selection").dataset.phase;
const next = `/h5/selection/${rid}/${phase === "pre" ? "pre" : "formal"}/`;
const status = document.getElementById("window-status");
const countdown = document.getElementById("open-countdown");
let waiting = false; // formal: the family's window has not opened yet
let stateTimer = null;
let upcoming = null; // formal: the session the family waits for
let opening = 0; // reads of the state since the countdown reached 00:00
const OPENING_CHECK_MS = [300, 1000, 2000, 3000]; // then every 3 s
const COUNTDOWN_WITHIN_MS = 3600 * 1000; // the countdown shows in the last hour

const form = declaration({
  article: document.getElementById("declaration"),
  ack: document.getElementById("ack"),
  button: document.getElementById("go-btn"),
  read: async () => {
    const data = await call("GET", `/api/v1/selection/${rid}/declaration/${phase}/`);
    return { text: data.text, version: data.text_version };
  },
  render(text) {
    const [title, ...lines] = text.split("\n");
    if (title.startsWith("补选")) {
      /* a supplementary session's declaration: the page says 补选, not 正选 */
      document.querySelector(".anju-titlebar__title").textContent = "补选声明";
      document.title = document.title.replace("正选声明", "补选声明");
    }
    return [
      el("h2", { class: "anju-declaration__title", text: title }),
      ...lines.map((line) => el("p", { text: line })),
    ];
  },
  blocked: () => waiting,
  send: (version) =>
    call("POST", `/api/v1/selection/${rid}/declaration/${phase}/`, {
      text_version: version,
      acknowledged: true,
    }),
  busyLabel: "正在进入…",
  sent: () => window.location.assign(next),
});

/* The wait for the window, every 250 ms: 「距正选开始 04:59」 in the last hour; from
 * 00:00 (server clock) 「正在开启，请稍候…」 until the state read says it is open. */
function drawWait() {
  if (!upcoming) {
    showCountdown(false);
    return;
  }
  const word = selectingWord(upcoming);
  const left = Date.parse(upcoming.starts_at) - clock.now();
  if (left <= 0) {
    status.textContent = "正在开启，请稍候…";
    status.classList.add("anju-opening");
    showCountdown(false);
    return;
  }
  status.textContent = `您的${word}时间为${fmt.window(upcoming)}，届时本页将自动开放【去选房】。`;
  status.classList.remove("anju-opening");
  countdown.textContent = `距${word}开始 ${fmt.mmss(left)}`;
  showCountdown(left <= COUNTDOWN_WITHIN_MS);
}

/* The countdown keeps its place while not shown (as the status keeps room for its lines):
 * nothing above 【去选房】 changes height when the window opens. */
function showCountdown(on) {
  countdown.classList.toggle("anju-held", !on);
}

/* 正选/补选 declaration: say when the family's window opens, count down to it, and open
 * 【去选房】 by itself once the server says it is open; after the window, say so and point
 * to the result. */
async function watchWindow() {
  if (phase === "pre") return;
  clearTimeout(stateTimer);
  try {
    const state = await call("GET", `/api/v1/selection/${rid}/state/`);
    upcoming = state.phase !== "formal" ? state.next_session : null;
    waiting = state.phase !== "formal";
    if (state.phase === "formal") {
      status.textContent = `${selectingWord(state.session)}已开始，请勾选声明后点击【去选房】。`;
      status.classList.remove("anju-opening");
      showCountdown(false);
    } else if (upcoming) {
      drawWait();
      const wait = Date.parse(upcoming.starts_at) - clock.now();
      if (wait > 0) opening = 0;
      if (wait > 0 && wait < 6 * 3600 * 1000) {
        stateTimer = setTimeout(watchWindow, wait + OPENING_CHECK_MS[0]);
      } else if (wait <= 0) {
        stateTimer = setTimeout(
          watchWindow,
          OPENING_CHECK_MS[Math.min(++opening, OPENING_CHECK_MS.length - 1)],
        );
      }
    } else {
      status.textContent = "您的选房场次已结束，请查看选房结果。";
      status.classList.remove("anju-opening");
      showCountdown(false);
    }
  } catch (failure) {
    await showFailure(failure);
    if (upcoming) stateTimer = setTimeout(watchWindow, 3000);
  }
  form.sync();
}

watchWindow();
if (phase !== "pre") setInterval(() => waiting && drawWait(), 250);
