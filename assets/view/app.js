// rsr view: the pages, built from the JSON of /api/* with DOM calls only.
// Model text is always set with textContent (never innerHTML), so a
// response holding markup is shown as text.
"use strict";

const main = () => document.getElementById("main");

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else if (k === "onsubmit") e.addEventListener("submit", v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") q.set(k, v);
  }
  const url = path + (q.toString() ? "?" + q.toString() : "");
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function fmt(x, digits) {
  if (x === null || x === undefined) return "–";
  if (typeof x === "number") return Number.isInteger(x) ? String(x) : x.toFixed(digits ?? 3);
  return String(x);
}

// Replaces the page's content; absent parts (null) are left out.
function show(...nodes) {
  main().replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

// Two selects naming the verdict sources compared ("inline" or a label);
// `onPick(a, b)` runs when either changes.
function pairPicker(info, pair, onPick) {
  const sources = ["inline", ...info.labels.map((l) => l.label)];
  const select = (value) => el("select", {},
    ...sources.map((s) => el("option", { value: s, ...(s === value ? { selected: "" } : {}) }, s)));
  const a = select(pair[0]), b = select(pair[1]);
  for (const s of [a, b]) s.addEventListener("change", () => onPick(a.value, b.value));
  return el("p", { class: "meta" }, "Compare verdicts of ", a, " and ", b);
}

function showError(err) {
  main().replaceChildren(el("p", { class: "error" }, "Error: " + err.message));
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/prompts";
  const [path, query] = hash.split("?");
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", hash.startsWith(a.getAttribute("href").slice(1)));
  }
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "prompts";
  const run = {
    prompts: () => prompts(params),
    prompt: () => prompt(decodeURIComponent(parts.slice(1).join("/"))),
    disagreements: () => disagreements(params),
    "no-answer": () => noAnswer(params),
    run: () => runPage(),
  }[page];
  (run || (() => prompts(params)))().catch(showError);
}

function go(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "" && v !== false) q.set(k, v);
  }
  location.hash = path + (q.toString() ? "?" + q.toString() : "");
}

// The run changed on disk (it is being sampled): these lists are from just
// before, and newer ones are being computed.
function staleNote(body) {
  return body.stale ? el("p", { class: "meta" }, "The run is changing: this list is from a moment ago; reload for the newest.") : null;
}

function pager(total, offset, limit, onPage) {
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  return el("div", { class: "pager" },
    el("button", { type: "button", ...(offset <= 0 ? { disabled: "" } : {}),
      onclick: () => onPage(Math.max(0, offset - limit)) }, "← previous"),
    el("span", {}, `${from}–${to} of ${total}`),
    el("button", { type: "button", ...(to >= total ? { disabled: "" } : {}),
      onclick: () => onPage(offset + limit) }, "next →"));
}

function promptLink(id, idx) {
  const a = el("a", { href: "#/prompt/" + encodeURIComponent(id) + (idx !== undefined ? "" : "") }, id);
  return idx === undefined ? a : el("span", {}, a, " #" + idx);
}

const COLUMNS = [
  ["id", "id"], ["pass_rate", "pass rate"], ["n_valid", "valid"], ["n_pass", "passed"],
  ["n_truncated", "truncated"], ["n_errors", "failed"], ["mean_completion_tokens", "mean tokens"],
  ["disagree", "the two sources disagree"],
];

async function prompts(p) {
  const offset = Number(p.offset || 0), limit = Number(p.limit || 50);
  const info = await api("/api/info");
  const pair = [p.a || info.pair[0], p.b || info.pair[1]];
  const body = await api("/api/prompts", {
    offset, limit, sort: p.sort, desc: p.desc, min_pass_rate: p.min, max_pass_rate: p.max, where: p.where,
    a: pair[0], b: pair[1],
  });
  const form = el("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    go("/prompts", { ...p, offset: 0, min: f.get("min"), max: f.get("max"), where: f.get("where") });
  } },
    el("label", {}, "pass rate from", el("input", { name: "min", size: "5", value: p.min || "" })),
    el("label", {}, "to", el("input", { name: "max", size: "5", value: p.max || "" })),
    el("label", {}, "where (SQL over the prompt list)", el("input", { name: "where", value: p.where || "",
      placeholder: "n_valid >= 4 AND json_get_int(metadata, 'level') >= 4" })),
    el("button", { type: "submit" }, "Filter"));
  const head = el("tr", {}, ...COLUMNS.map(([key, label]) => el("th", { class: "sortable", onclick: () =>
    go("/prompts", { ...p, offset: 0, sort: key, desc: p.sort === key && !p.desc ? 1 : "" }) },
    label + (p.sort === key ? (p.desc ? " ▼" : " ▲") : ""))));
  const rows = body.rows.map((r) => el("tr", { "data-id": r.id },
    el("td", {}, promptLink(r.id)),
    el("td", { class: "num" }, fmt(r.pass_rate)),
    el("td", { class: "num" }, fmt(r.n_valid)),
    el("td", { class: "num" }, fmt(r.n_pass)),
    el("td", { class: "num" }, fmt(r.n_truncated)),
    el("td", { class: "num" }, fmt(r.n_errors)),
    el("td", { class: "num" }, fmt(r.mean_completion_tokens, 1)),
    el("td", {}, r.disagree ? el("span", { class: "flag" }, "yes") : "")));
  show(
    el("h2", {}, "Prompts"), staleNote(body), form,
    pairPicker(info, pair, (a, b) => go("/prompts", { ...p, offset: 0, a, b })),
    pager(body.total, offset, limit, (o) => go("/prompts", { ...p, offset: o })),
    el("table", { id: "prompts" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

// The thinking and the final part of a response, split as rsr's verifiers do.
function split(response, reasoning) {
  if (response === null || response === undefined) return { thinking: reasoning, final: null };
  for (const [open, close] of [["<think>", "</think>"], ["<thinking>", "</thinking>"]]) {
    const end = response.lastIndexOf(close);
    if (end >= 0) {
      let thinking = response.slice(0, end);
      const start = thinking.indexOf(open);
      if (start >= 0) thinking = thinking.slice(start + open.length);
      return { thinking: reasoning || thinking, final: response.slice(end + close.length) };
    }
    if (response.indexOf(open) >= 0) return { thinking: response, final: null, unclosed: true };
  }
  return { thinking: reasoning, final: response };
}

// The final part with the extracted answer marked where it was found last.
function highlighted(text, pred) {
  const pre = el("pre", { class: "final" });
  const at = pred ? text.lastIndexOf(pred) : -1;
  if (at < 0) {
    pre.append(document.createTextNode(text));
    return [pre, pred ? el("p", { class: "meta" }, "extracted answer (not written verbatim): ", el("code", {}, pred)) : null];
  }
  pre.append(document.createTextNode(text.slice(0, at)), el("mark", { class: "extracted" }, pred),
    document.createTextNode(text.slice(at + pred.length)));
  return [pre, null];
}

// An ifeval verdict: `id=followed|loose|failed` per instruction, shown as
// a list instead of an extracted answer.
const INSTRUCTIONS = /^[a-z_]+:[a-z_]+=(followed|loose|failed)( [a-z_]+:[a-z_]+=(followed|loose|failed))*$/;
function instructionList(pred) {
  const words = { followed: ["pass", "followed"], loose: ["loose", "followed only loosely (IFEval's loose variants)"],
    failed: ["fail", "not followed"] };
  return el("ul", { class: "instructions" }, ...pred.split(" ").map((item) => {
    const [id, outcome] = item.split("=");
    const [cls, word] = words[outcome];
    return el("li", {}, el("code", {}, id), " ", el("span", { class: cls }, word));
  }));
}

// What a judge said (or what explains a program's first failed test):
// short answers inline, long ones folded.
function said(text) {
  if (text === null || text === undefined) return "";
  const pre = el("pre", { class: "raw" }, text);
  return text.length <= 160 ? pre : el("details", {}, el("summary", {}, text.slice(0, 80) + "…"), pre);
}

function verdict(score, pass) {
  if (score === null || score === undefined) return el("span", { class: "meta" }, "no score");
  return el("span", { class: score >= pass ? "pass" : "fail" }, fmt(score));
}

async function prompt(id) {
  const [body, info] = await Promise.all([api("/api/prompt", { id }), api("/api/info")]);
  const passOf = Object.fromEntries(info.labels.map((l) => [l.label, l.pass_score]));
  const p = body.prompt;
  const messages = JSON.parse(p.messages || "[]");
  const msgs = messages.map((m) => el("div", { class: "card" },
    el("h3", {}, m.role),
    el("pre", {}, typeof m.content === "string" ? m.content
      : (m.content || []).map((c) => c.text || "[" + (c.type || "part") + "]").join("\n"))));
  const cards = body.rollouts.map((r) => {
    const parts = split(r.response, r.reasoning);
    const labels = Object.entries(body.verdicts)
      .map(([label, vs]) => [label, vs.find((v) => v.rollout_idx === r.rollout_idx)])
      .filter(([, v]) => v);
    const pred = r.pred ?? (labels[0] ? labels[0][1].pred : null);
    const table = el("table", { class: "verdicts" },
      el("tr", {}, el("th", {}, "source"), el("th", {}, "score"), el("th", {}, "extracted / read"),
        el("th", {}, "outcome"), el("th", {}, "judge said / detail")),
      r.error ? null : el("tr", {}, el("td", {}, "inline"), el("td", {}, verdict(r.score, 1.0)),
        el("td", {}, fmt(r.pred)), el("td", {}, ""), el("td", {}, "")),
      ...labels.map(([label, v]) => el("tr", {}, el("td", {}, label),
        el("td", {}, verdict(v.score, passOf[label] ?? 1.0)), el("td", {}, fmt(v.pred)),
        el("td", {}, fmt(v.outcome)), el("td", {}, said(v.judge_raw ?? v.judge_error ?? v.detail)))));
    const [final, note] = parts.final === null ? [el("p", { class: "flag" }, "thinking never closed: no final answer"), null]
      : pred && INSTRUCTIONS.test(pred) ? [el("pre", { class: "final" }, parts.final.trim()), instructionList(pred)]
      : highlighted(parts.final.trim(), pred);
    return el("div", { class: "card rollout", "data-rollout": r.rollout_idx },
      el("h3", {}, `rollout ${r.rollout_idx}`, r.error ? el("span", { class: "fail" }, " failed request") : ""),
      el("p", { class: "meta" }, `step ${r.step} · finish ${fmt(r.finish_reason)} · ${fmt(r.completion_tokens)} completion tokens · ${fmt(r.latency_ms)} ms · ${r.valid ? "valid" : "not valid"}${r.truncated ? " · truncated" : ""} · ${fmt(r.endpoint)}`),
      r.error ? el("pre", { class: "error" }, r.error) : null,
      parts.thinking ? el("details", {}, el("summary", {}, `thinking (${parts.thinking.length} characters)`),
        el("pre", { class: "thinking" }, parts.thinking)) : null,
      r.error ? null : final, note, table);
  });
  // replaceChildren writes null as text: absent parts are left out.
  main().replaceChildren(...[
    el("h2", {}, "Prompt ", el("code", {}, p.id)),
    el("p", { class: "meta" }, "gold answer: ", el("code", { class: "gold" }, fmt(p.answer)), ` · shard ${p.shard}`),
    p.metadata ? el("details", {}, el("summary", {}, "metadata"), el("pre", {}, p.metadata)) : null,
    p.contaminated ? el("p", { class: "flag" }, "contaminated: shares ",
      el("code", {}, fmt(p.contamination_ngram)), " with ", el("code", {}, fmt(p.contaminated_by))) : null,
    p.duplicate_of ? el("p", { class: "flag" }, "duplicate of ", el("code", {}, p.duplicate_of),
      ` (similarity ${fmt(p.duplicate_similarity)})`) : null,
    ...msgs,
    el("h2", {}, `Rollouts (${body.rollouts.length})`),
    ...cards].filter(Boolean));
}

async function disagreements(p) {
  const offset = Number(p.offset || 0), limit = Number(p.limit || 50);
  const info = await api("/api/info");
  const pair = [p.a || info.pair[0], p.b || info.pair[1]];
  const body = await api("/api/disagreements", { offset, limit, a: pair[0], b: pair[1] });
  const rows = body.rows.map((r) => el("tr", {},
    el("td", {}, promptLink(r.id, r.rollout_idx)),
    el("td", {}, ...r.sources.filter((s) => s.passed).map((s) => el("div", {}, `${s.source}: ${fmt(s.score)} (${fmt(s.pred)})`))),
    el("td", {}, ...r.sources.filter((s) => !s.passed).map((s) => el("div", {}, `${s.source}: ${fmt(s.score)} (${fmt(s.pred)})`)))));
  show(
    el("h2", {}, "Rollouts where two verdict sources disagree"), staleNote(body),
    pairPicker(info, pair, (a, b) => go("/disagreements", { a, b })),
    el("p", { class: "meta" }, "Valid rollouts that one of the two sources (the inline verifier, a re-score, a judge, a reward model) passes and the other fails."),
    pager(body.total, offset, limit, (o) => go("/disagreements", { ...p, offset: o })),
    el("table", { id: "disagreements" },
      el("tr", {}, el("th", {}, "rollout"), el("th", {}, "pass"), el("th", {}, "fail")), ...rows));
}

async function noAnswer(p) {
  const offset = Number(p.offset || 0), limit = Number(p.limit || 50);
  const info = await api("/api/info");
  const body = await api("/api/no-answer", { offset, limit, scores: p.scores });
  const select = el("select", {}, el("option", { value: "" }, "inline"),
    ...info.labels.map((l) => el("option", { value: l.label, ...(p.scores === l.label ? { selected: "" } : {}) }, l.label)));
  select.addEventListener("change", () => go("/no-answer", { scores: select.value }));
  const rows = body.rows.map((r) => el("tr", {},
    el("td", {}, promptLink(r.id, r.rollout_idx)),
    el("td", {}, el("code", {}, fmt(r.answer))),
    el("td", {}, el("pre", {}, "…" + (r.ending || "")))));
  show(
    el("h2", {}, "Responses where the verifier found no answer"),
    el("p", { class: "meta" }, "Verdicts: ", select),
    pager(body.total, offset, limit, (o) => go("/no-answer", { ...p, offset: o })),
    el("table", { id: "no-answer" },
      el("tr", {}, el("th", {}, "rollout"), el("th", {}, "gold"), el("th", {}, "how it ends")), ...rows));
}

async function runPage() {
  show(el("h2", {}, "The run"), el("iframe", { src: "/report", title: "report" }));
}

async function start() {
  try {
    const info = await api("/api/info");
    document.getElementById("workdir").textContent =
      `${info.work_dir} · ${info.prompts} prompts · ${info.rollouts} rollouts`;
  } catch (e) {
    showError(e);
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
