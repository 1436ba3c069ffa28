/* 选房结果核验 (public, no login): the receipt of the allocation with a 核验码, checked here,
 * on the phone, with the browser's own cryptography — the entry against its leaf hash, the
 * leaf against the signed tree head (RFC 9162 inclusion proof) and the head's Ed25519
 * signature against the log's public key. The format is docs/TRANSPARENCY.md; the offline
 * checker is tools/verify.py. */
import { api } from "./lib/api.js";
import { CODE, el, row } from "./lib/dom.js";
import { dateTime, hex } from "./lib/format.js";

const root = document.getElementById("ledger-verify");
const rid = root.dataset.roundId;
const form = document.getElementById("verify-form");
const input = document.getElementById("code");
const error = document.getElementById("code-error");
const out = document.getElementById("verify-out");
// Allocation.How's labels, as the admin and the family's result page say them.
/* How the unit was decided, from the signed entry alone: it does not say whether the session
 * was a 正选 or a 补选 one, so a family's own confirmation is 「家庭确认选定」 in both. */
const HOW = { confirmed: "家庭确认选定", auto: "系统自动选定", staff: "工作人员分配" };
const enc = new TextEncoder();

/* Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False). */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

const unhex = (text) => Uint8Array.from(text.match(/../g) || [], (h) => Number.parseInt(h, 16));
const unbase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

async function sha256(...parts) {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

/* RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null if it cannot. */
async function rootFromProof(index, size, leaf, proof) {
  if (index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

async function signatureValid(head, pem) {
  const der = unbase64(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""));
  const key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
  const message = enc.encode(`${head.log}\n${head.size}\n${head.root}\n${head.time}\n`);
  return crypto.subtle.verify({ name: "Ed25519" }, key, unbase64(head.signature), message);
}

async function check(receipt, key) {
  const leaf = await sha256(Uint8Array.of(0), enc.encode(canonical(receipt.entry)));
  const leafOk = hex(leaf) === receipt.leaf_hash;
  const proofRoot = await rootFromProof(
    receipt.index,
    receipt.head.size,
    leaf,
    receipt.inclusion.map(unhex),
  );
  const proofOk = proofRoot !== null && hex(proofRoot) === receipt.head.root;
  let signatureOk = null; // null: this browser cannot check Ed25519
  try {
    signatureOk = key.key_id === receipt.head.key_id && (await signatureValid(receipt.head, key.public_key_pem));
  } catch {
    signatureOk = null;
  }
  return { leafOk, proofOk, signatureOk };
}

/* One check's line: ✓ what held, ✗ what did not, — what this browser could not check. Each
 * part is text or a node (an array of them). */
function mark(ok, yes, no, unknown) {
  const [sign, what] = ok === null ? ["—", unknown] : ok ? ["✓", yes] : ["✗", no];
  return [`${sign} `, what].flat();
}

/* The log keeps a unit as 「1-201」 (building-number); the family reads 「1栋 201」 everywhere. */
function unitLabel(label) {
  const dash = (label || "").lastIndexOf("-");
  return dash > 0 ? `${label.slice(0, dash)}栋 ${label.slice(dash + 1)}` : label || "—";
}

function show(receipt, result) {
  const payload = receipt.entry.payload;
  const allOk = result.leafOk && result.proofOk && result.signatureOk === true;
  const title = allOk ? "核验通过" : result.signatureOk === null && result.leafOk && result.proofOk ? "部分核验通过" : "核验未通过";
  out.replaceChildren(
    el(
      "div",
      { class: "weui-msg anju-result-msg" },
      el(
        "div",
        { class: "weui-msg__icon-area" },
        el("i", { class: `${allOk ? "weui-icon-success" : "weui-icon-warn"} weui-icon_msg` }),
      ),
      el(
        "div",
        { class: "weui-msg__text-area" },
        el("h2", { class: "weui-msg__title", id: "verify-title", text: title }),
        allOk
          ? null
          : el("p", {
              class: "weui-msg__desc",
              text:
                result.leafOk && result.proofOk
                  ? "记录已在日志中，但本浏览器无法核对签名。"
                  : "该记录与系统签名的选房日志不一致，请立即联系工作人员。",
            }),
      ),
    ),
    el(
      "div",
      { class: "weui-form-preview anju-card" },
      el(
        "dl",
        { class: "weui-form-preview__bd" },
        row("选定房源", unitLabel(payload.unit_label), { id: "verify-unit" }),
        row("确定方式", HOW[payload.how] || "—"),
        row("家庭排位", String(payload.rank ?? "—")),
        row("确定时间", dateTime(receipt.entry.at, { seconds: true })),
        row("日志序号", `第${receipt.index + 1}条（共${receipt.head.size}条）`),
        row("签名时间", dateTime(receipt.head.time, { seconds: true })),
      ),
    ),
    el("h3", { class: "weui-cells__title anju-section-title", text: "核验项目" }),
    el(
      "div",
      { class: "weui-cells anju-inset", id: "verify-checks" },
      [
        mark(result.leafOk, "记录内容完整，未被改动", "记录内容已被改动", ""),
        mark(result.proofOk, "记录在已签名的选房日志中", "记录不在该签名日志中", ""),
        mark(
          result.signatureOk,
          ["系统签名有效（签名密钥编号 ", el("span", CODE, receipt.head.key_id), "）"],
          "日志签名无效",
          "本浏览器无法核对签名，请下载凭证后用离线工具核验",
        ),
      ].map((parts) => el("div", { class: "weui-cell" }, el("div", { class: "weui-cell__bd" }, parts))),
    ),
    el("p", {
      class: "weui-cells__tips",
      text: "本页只说明该记录已记入系统签名的公开日志；核验码对应的家庭身份不在日志中公开。",
    }),
  );
}

function message(text) {
  out.replaceChildren(el("div", { class: "weui-cells__tips anju-verify-message", id: "verify-message", text }));
}

async function run(code) {
  error.hidden = true;
  if (!/^[0-9a-fA-F]{10}$/.test(code)) {
    error.textContent = "核验码为10位数字或字母a-f";
    error.hidden = false;
    return;
  }
  if (!window.crypto || !window.crypto.subtle) {
    message("当前页面无法使用浏览器的加密功能（需通过 https 访问），请下载凭证后用离线工具核验。");
    return;
  }
  message("正在核验…");
  let receipt;
  let key;
  try {
    [receipt, key] = await Promise.all([
      api("GET", `/api/v1/ledger/${rid}/receipts/${code.toLowerCase()}/`),
      api("GET", "/api/v1/ledger/public-key/"),
    ]);
  } catch (failure) {
    message(failure.error ? failure.error.message : "系统繁忙，请稍后再试");
    return;
  }
  if (!receipt.head) {
    message("该记录正在写入选房日志，请稍候几秒再核验。");
    return;
  }
  show(receipt, await check(receipt, key));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run(input.value.trim());
});
if (input.value) run(input.value.trim());
