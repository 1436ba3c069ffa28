/* Times as applicants read them, the same on every page, in SMS texts and in PDFs (core/fmt.py
 * `datetime_zh`): 「2026年12月5日 01:08」 (with `seconds`, 「… 01:08:09」), always in the
 * server's zone whatever the device's. */

export const TZ = "Asia/Shanghai";

const PARTS = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TZ,
  hourCycle: "h23",
  year: "numeric",
  month: "numeric",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

const two = (v) => String(v).padStart(2, "0");

export function dateTime(value, { seconds = false } = {}) {
  if (value === null || value === undefined || value === "") return "";
  const date = new Date(typeof value === "number" ? value : Date.parse(value));
  if (Number.isNaN(date.getTime())) return "";
  const p = {};
  for (const { type, value: v } of PARTS.formatToParts(date)) p[type] = v;
  const hm = `${two(p.hour)}:${two(p.minute)}`;
  const clock = seconds ? `${hm}:${two(p.second)}` : hm;
  return `${p.year}年${p.month}月${p.day}日 ${clock}`;
}

/* 「2026年1月20日 09:30 至 2026年1月23日 18:00」 */
export function range(startsAt, endsAt) {
  return `${dateTime(startsAt)} 至 ${dateTime(endsAt)}`;
}

/* 「01:59」 for a number of seconds left (never negative). */
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${two(Math.floor(s / 60))}:${two(s % 60)}`;
}

/* Bytes as lower-case hex. */
export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
