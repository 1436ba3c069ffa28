/* Countdowns for screen readers (issue 16 item 3). A visible clock that changes every second
 * must not be a live region (a screen reader would read it every second, or never finish a
 * sentence); it carries role="timer" and aria-live="off". Instead two visually hidden live
 * regions say the time left only at moments that matter:
 *   - politely (aria-live=polite) as each whole minute is reached (「正选时间剩余2分钟」; for a
 *     countdown longer than ten minutes, at each whole ten minutes until the last ten);
 *   - assertively (aria-live=assertive) in the last 30 s: at 30, 20 and 10 s, and when the
 *     server says the last 30 s have begun (its clock may be ahead of the page's).
 * Both regions exist from the start (a region added with its text is not always read); only
 * one holds text at a time.
 *
 *   const say = countdownAnnouncer({ phrase: (t) => `正选时间剩余${t}`, lastCall: "…" });
 *   say.update(msLeft, { last });  // each tick of the page's own countdown
 *   say.now("正选时间已结束");       // a one-off, assertive
 */

import { el } from "./dom.js";

const LAST_MS = 30_000;
const ASSERTIVE_AT = [20, 10]; // seconds left, after the 30 s call

function amount(seconds) {
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60}分钟`;
  return `${seconds}秒`;
}

export function countdownAnnouncer({ id = "countdown", phrase = (t) => `剩余${t}`, lastCall = "" } = {}) {
  const region = (politeness) =>
    el("div", {
      id: `${id}-${politeness}`,
      class: "weui-hidden_abs anju-announce",
      "aria-live": politeness,
      "aria-atomic": "true",
      dataset: { announce: politeness },
    });
  const polite = region("polite");
  const assertive = region("assertive");
  document.body.append(polite, assertive);

  let previous = null; // seconds left at the last update
  let lastCalled = false;

  function say(text, { urgent = false } = {}) {
    const [on, off] = urgent ? [assertive, polite] : [polite, assertive];
    off.textContent = "";
    // The same words twice in a row are read again only if the text node changes.
    on.textContent = on.textContent === text ? `${text}\u00a0` : text;
  }

  function update(msLeft, { last = false } = {}) {
    const seconds = Math.max(0, Math.ceil(msLeft / 1000));
    const before = previous;
    previous = seconds;
    if (seconds <= 0) return;
    const inLast = last || msLeft <= LAST_MS;
    if (inLast && !lastCalled) {
      lastCalled = true;
      // The moment the last 30 s begin (or the page opens inside them).
      const left = phrase(amount(Math.min(seconds, 30)));
      say(lastCall ? `${left}，${lastCall}` : left, { urgent: true });
      return;
    }
    if (before === null || seconds >= before) return; // the page's first tick, or no move
    if (inLast) {
      const mark = ASSERTIVE_AT.find((s) => s < before && s >= seconds);
      if (mark) say(phrase(amount(mark)), { urgent: true });
      return;
    }
    // A whole minute reached since the last tick (121 → 120 s: 「2分钟」; a background tab's
    // tick may skip the exact second: the minute it passed is said).
    const mark = Math.floor((before - 1) / 60) * 60;
    if (mark > Math.floor((seconds - 1) / 60) * 60) {
      const minute = mark / 60;
      if (minute <= 10 || minute % 10 === 0) say(phrase(amount(mark)));
    }
  }

  return {
    update,
    now: (text) => say(text, { urgent: true }),
    polite,
    assertive,
  };
}
