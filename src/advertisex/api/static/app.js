// The advertisex dashboard: reads the query API (/api/v1) and redraws itself every few seconds.
"use strict";

const HOUR = 3600 * 1000;
const state = { meta: null, range: "all", sort: { key: "impressions", desc: true }, rows: [], charts: [], version: 0, ticket: 0 };

// A read token given once as #token=... is kept for the session and sent as a bearer token.
(function keepToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("advx-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
})();

async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.append(k, v);
  const headers = {};
  const token = sessionStorage.getItem("advx-token");
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch("/api/v1/" + path + (q.toString() ? "?" + q : ""), { headers });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

const int = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"));
const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(2) + "%");
const money = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const RATIO = new Set(["ctr", "cvr", "win_rate"]);
const MONEY = new Set(["spend", "cpa", "cpc", "cpm", "revenue", "roas"]);
const LABEL = { campaign_id: "Campaign", country: "Country", impressions: "Impressions", clicks: "Clicks", ctr: "CTR", conversions: "Conversions", cvr: "CVR", spend: "Spend", cpa: "CPA", win_rate: "Win rate", bid_requests: "Bid requests", wins: "Wins",
  source: "Source", received: "Received", accepted: "Accepted", rejected: "Rejected", duplicates: "Duplicates", late_events: "Late",
  last_event_time: "Newest event (UTC)", freshness_seconds: "Age of newest", reason: "Reason", rejects: "Rows", last_rejected_at: "Last (UTC)",
  check: "Check", subject: "Subject", status: "Status", shown_value: "Value", shown_threshold: "Limit",
  state: "State", severity: "Severity", alertname: "Alert", labels: "Labels", active_since: "Since", value: "Value" };

function fmt(key, v) {
  if (typeof v !== "number") return v === null || v === undefined ? "–" : String(v);
  if (RATIO.has(key)) return pct(v);
  if (MONEY.has(key)) return money(v);
  return int(v);
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fillTable(table, columns, rows, opts = {}) {
  const head = table.tHead, body = table.tBodies[0];
  head.replaceChildren();
  const tr = el("tr");
  for (const c of columns) {
    const th = el("th", { "data-col": c }, LABEL[c] || c);
    if (opts.sortable) {
      th.classList.add("sortable");
      if (state.sort.key === c) th.classList.add(state.sort.desc ? "sorted-desc" : "sorted-asc");
      th.addEventListener("click", () => {
        state.sort = { key: c, desc: state.sort.key === c ? !state.sort.desc : true };
        renderCampaigns();
      });
    }
    tr.append(th);
  }
  head.append(tr);
  body.replaceChildren();
  if (!rows.length) {
    const empty = el("tr"); empty.append(el("td", { colspan: columns.length }, "no data")); body.append(empty);
    return;
  }
  for (const r of rows) {
    const row = el("tr", { "data-key": String(r[columns[0]]) });
    for (const c of columns) {
      const td = el("td", { "data-col": c }, (opts.format || fmt)(c, r[c], r));
      if (r[c] !== null && r[c] !== undefined) td.dataset.value = String(r[c]);
      row.append(td);
    }
    body.append(row);
  }
}

function sortRows(rows) {
  const { key, desc } = state.sort;
  const known = rows.filter((r) => r[key] !== null && r[key] !== undefined);
  const unknown = rows.filter((r) => r[key] === null || r[key] === undefined);
  known.sort((a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0) * (desc ? -1 : 1));
  return known.concat(unknown);
}

function renderCampaigns() {
  const cols = ["campaign_id", ...["impressions", "clicks", "ctr", "conversions", "cvr", "spend", "cpa", "win_rate"].filter((m) => state.meta.metrics.includes(m))];
  fillTable(document.getElementById("campaigns"), cols, sortRows(state.rows), { sortable: true });
  document.body.dataset.sort = (state.sort.desc ? "-" : "") + state.sort.key;
}

function renderKpis(rows) {
  const sum = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
  const t = {};
  for (const k of ["impressions", "clicks", "conversions", "spend", "bids", "wins"]) if (state.meta.metrics.includes(k)) t[k] = sum(k);
  const tiles = [["impressions", t.impressions], ["clicks", t.clicks], ["ctr", t.impressions ? t.clicks / t.impressions : null],
    ["conversions", t.conversions], ["cvr", t.clicks ? t.conversions / t.clicks : null]];
  if ("spend" in t) tiles.push(["spend", t.spend], ["cpa", t.conversions ? t.spend / t.conversions : null]);
  if ("wins" in t) tiles.push(["win_rate", t.bids ? t.wins / t.bids : null]);
  const box = document.getElementById("kpis");
  box.replaceChildren(...tiles.map(([k, v]) => {
    const d = el("div", { class: "tile", "data-kpi": k });
    d.append(el("div", { class: "label" }, LABEL[k] || k), el("div", { class: "value" }, fmt(k, v)));
    return d;
  }));
}

function renderCharts(rows, from, to) {
  const lo = from ? Date.parse(from + "Z") : -Infinity, hi = to ? Date.parse(to + "Z") : Infinity;
  const shown = rows.filter((r) => { const t = Date.parse(r.hour + "Z"); return t >= lo && t < hi; });
  const xs = shown.map((r) => Date.parse(r.hour + "Z") / 1000);
  const specs = [
    ["Impressions", [["impressions", "#2457d6"]]],
    ["Clicks and conversions", [["clicks", "#d35400"], ["conversions", "#27ae60"]]],
  ];
  if (state.meta.metrics.includes("spend")) specs.push(["Spend", [["spend", "#8e44ad"]]]);
  const box = document.getElementById("charts");
  const width = Math.max(280, Math.floor((box.clientWidth - 16 * (specs.length - 1)) / Math.min(specs.length, Math.max(1, Math.floor(box.clientWidth / 320)))));
  if (typeof uPlot === "undefined") { box.textContent = "chart library missing: run `make assets`"; return; }
  specs.forEach(([title, series], i) => {
    const data = [xs, ...series.map(([k]) => shown.map((r) => r[k]))];
    if (state.charts[i]) {
      state.charts[i].setData(data);
      state.charts[i].setSize({ width, height: 200 });
      return;
    }
    const holder = el("div", { class: "chart", "data-chart": series.map(([k]) => k).join(",") });
    box.append(holder);
    state.charts[i] = new uPlot({ title, width, height: 200,
      series: [{}, ...series.map(([k, color]) => ({ label: LABEL[k] || k, stroke: color, width: 1.5, value: (u, v) => fmt(k, v) }))],
      axes: [{}, { size: 60 }] }, data, holder);
  });
}

function renderFunnel(steps) {
  const top = Math.max(1, ...steps.map((s) => s.count));
  document.getElementById("funnel").replaceChildren(...steps.map((s) => {
    const li = el("li", { "data-step": s.step, "data-value": String(s.count) });
    const what = el("div", { class: "what" });
    what.append(el("span", {}, LABEL[s.step] || s.step), el("span", {}, int(s.count) + (s.rate_from_previous === null ? "" : "  (" + pct(s.rate_from_previous) + ")")));
    const bar = el("div", { class: "bar" }); bar.style.width = (100 * s.count / top).toFixed(1) + "%";
    li.append(what, bar);
    return li;
  }));
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 120) return Math.round(seconds) + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}

function renderQuality(q) {
  LABEL.late_events = `Late (last ${q.late_window_hours} h)`;
  fillTable(document.getElementById("sources"),
    ["source", "received", "accepted", "rejected", "duplicates", "late_events", "last_event_time", "freshness_seconds"], q.sources,
    { format: (c, v) => (c === "freshness_seconds" ? age(v) : c === "last_event_time" ? (v || "–").replace("T", " ") : fmt(c, v)) });
  fillTable(document.getElementById("reasons"), ["reason", "source", "rejects", "last_rejected_at"], q.rejects_by_reason,
    { format: (c, v) => (c === "last_rejected_at" ? (v || "–").replace("T", " ").slice(0, 19) : fmt(c, v)) });
}

function renderChecks(findings) {
  // Whole-source findings always, per-campaign/reason/column ones when they fail; failing first.
  const rows = findings.filter((f) => f.failed || !f.subject)
    .map((f) => ({ ...f, status: f.failed ? "FAIL" : "ok" }))
    .sort((a, b) => (b.failed - a.failed) || a.check.localeCompare(b.check) || a.source.localeCompare(b.source));
  fillTable(document.getElementById("checks"), ["check", "status", "severity", "source", "subject", "shown_value", "shown_threshold"], rows);
  for (const td of document.querySelectorAll("#checks td[data-col=status]")) if (td.textContent === "FAIL") td.classList.add("state-firing");
}

function renderAlerts(alerts) {
  const rows = alerts.map((a) => ({ ...a, labels: Object.entries(a.labels || {}).filter(([, v]) => v).map(([k, v]) => k + "=" + v).join(" ") }));
  fillTable(document.getElementById("alerts"), ["alertname", "state", "severity", "labels", "active_since", "value"], rows,
    { format: (c, v) => (c === "value" && typeof v === "number" ? v.toPrecision(3) : fmt(c, v)) });
  for (const td of document.querySelectorAll("#alerts td[data-col=state]")) td.classList.add("state-" + td.textContent);
}

const iso = (ms) => new Date(ms).toISOString().slice(0, 19);

async function refresh() {
  // Only the newest refresh draws: a timer refresh still waiting when the range changes must
  // not draw its answers under the new range.
  const ticket = ++state.ticket;
  const range = state.range;
  try {
    // The figures come from the rollups, which serve's timer keeps up with what arrives (the
    // API's default, auto, would recompute from the events whenever a batch is newer).
    const scope = { source: "rollups", include_ivt: document.getElementById("ivt").checked ? "true" : null };
    const panels = (range) => Promise.all([
      api("campaigns", { group_by: "campaign", ...range }), api("funnel", range), api("quality"),
      api("campaigns", { group_by: "country", ...range }), api("alerts", { limit: 50 }),
    ]);
    // All at once for all data; a range waits for the series, whose newest hour with
    // impressions anchors it (so a store of past days reads well too; bid requests without a
    // time of their own carry their arrival time).
    const metaP = state.meta ? Promise.resolve(state.meta) : api("meta");
    const seriesP = api("timeseries", { interval: "hour", ...scope });
    const early = range === "all" ? panels(scope) : null;
    state.meta = await metaP;
    const series = (await seriesP).rows;
    const served = series.filter((r) => r.impressions > 0);
    let from = null, to = null;
    if (range !== "all" && served.length) {
      const end = Date.parse(served[served.length - 1].hour + "Z") + HOUR;
      from = iso(end - Number(range) * HOUR);
      to = iso(end);
    }
    const [campaigns, funnel, quality, countries, alerts] = await (early || panels({ from, to, ...scope }));
    if (ticket !== state.ticket) return;
    state.rows = campaigns.rows;
    renderCampaigns();
    renderKpis(state.rows);
    renderCharts(series, from, to);
    renderFunnel(funnel.steps);
    renderQuality(quality);
    const cols = ["country", ...["impressions", "clicks", "ctr", "conversions", "spend"].filter((m) => state.meta.metrics.includes(m))];
    fillTable(document.getElementById("countries"), cols, countries.rows);
    renderAlerts(alerts.rows);
    // The checks run their queries now: drawn when they answer, without holding the page up.
    api("checks").then((c) => renderChecks(c.rows)).catch(() => {});
    document.getElementById("error").hidden = true;
    document.body.dataset.from = from || "";
    document.body.dataset.to = to || "";
    document.body.dataset.range = range;
    document.body.dataset.version = String(++state.version);
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString() + (from ? " · " + from.replace("T", " ") + " to " + to.replace("T", " ") + " UTC" : " · all data");
  } catch (e) {
    if (ticket !== state.ticket) return;
    const box = document.getElementById("error");
    box.textContent = "cannot load: " + e.message;
    box.hidden = false;
  }
}

for (const b of document.querySelectorAll("#ranges button")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("#ranges button")) o.classList.toggle("active", o === b);
    state.range = b.dataset.range;
    refresh();
  });
}
document.getElementById("ivt").addEventListener("change", () => refresh());
window.addEventListener("resize", () => state.charts.forEach((c) => c.setSize({ width: Math.max(280, c.root.parentElement.clientWidth), height: 200 })));

refresh().then(() => setInterval(refresh, state.meta ? state.meta.refresh_seconds * 1000 : 10000));
