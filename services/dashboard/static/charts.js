// civfed dashboard charts: small SVG charts drawn from the JSON API.
// No library and no network beyond this server, so the page works offline.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const W = 640, H = 220, PAD = 40;

function el(name, attrs, parent) {
  const node = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function section(title, note) {
  const box = document.createElement("section");
  const h = document.createElement("h2");
  h.textContent = title;
  box.appendChild(h);
  if (note) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = note;
    box.appendChild(p);
  }
  document.getElementById("charts").appendChild(box);
  return box;
}

function svg(box, name, points) {
  const s = el("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", "data-chart": name, "data-points": points});
  box.appendChild(s);
  return s;
}

function suppressedCount(cells) {
  return cells.filter((c) => c.suppressed).length;
}

// Daily series: one polyline per series; suppressed days leave a gap and a mark.
function lineChart(box, name, days, series) {
  const values = series.flatMap((s) => days.map((d) => (s.cells[d] || {}).value || 0));
  const max = Math.max(1, ...values);
  const shown = series.reduce((n, s) => n + days.filter((d) => s.cells[d] && !s.cells[d].suppressed).length, 0);
  const chart = svg(box, name, shown);
  const x = (i) => PAD + (i * (W - 2 * PAD)) / Math.max(1, days.length - 1);
  const y = (v) => H - PAD - (v * (H - 2 * PAD)) / max;
  el("line", {x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: "axis"}, chart);
  el("text", {x: 4, y: PAD - 8, class: "label"}, chart).textContent = max.toLocaleString();
  series.forEach((s, si) => {
    let path = "", pen = "M";
    days.forEach((d, i) => {
      const c = s.cells[d];
      if (!c || c.suppressed) {
        pen = "M";
        if (c) el("circle", {cx: x(i), cy: H - PAD, r: 3, class: "suppressed"}, chart);
        return;
      }
      path += `${pen}${x(i).toFixed(1)},${y(c.value).toFixed(1)} `;
      el("circle", {cx: x(i), cy: y(c.value), r: 2.5, class: `point s${si}`}, chart);
      pen = "L";
    });
    if (path) el("path", {d: path, class: `series s${si}`}, chart);
    el("text", {x: PAD + si * 160, y: H - 8, class: `legend s${si}`}, chart).textContent = s.label;
  });
  if (days.length) {
    el("text", {x: PAD, y: H - PAD + 14, class: "label"}, chart).textContent = days[0];
    el("text", {x: W - PAD - 70, y: H - PAD + 14, class: "label"}, chart).textContent = days[days.length - 1];
  }
  return chart;
}

// Horizontal bars for a breakdown; a suppressed cell is drawn as a hatched stub.
function barChart(box, name, entries) {
  const shown = entries.filter(([, c]) => !c.suppressed);
  const max = Math.max(1, ...shown.map(([, c]) => c.value));
  const rows = Math.max(entries.length, 1);
  const chart = svg(box, name, shown.length);
  chart.setAttribute("viewBox", `0 0 ${W} ${rows * 26 + 10}`);
  entries.forEach(([label, c], i) => {
    const yy = 6 + i * 26;
    el("text", {x: 4, y: yy + 14, class: "label"}, chart).textContent = label || "(total)";
    if (c.suppressed) {
      el("rect", {x: 200, y: yy, width: 60, height: 18, class: "bar suppressed"}, chart);
      el("text", {x: 268, y: yy + 14, class: "label"}, chart).textContent = `suppressed (${c.reason})`;
    } else {
      el("rect", {x: 200, y: yy, width: Math.max(2, (c.value * (W - 330)) / max), height: 18, class: "bar"}, chart);
      el("text", {x: W - 120, y: yy + 14, class: "label"}, chart).textContent = c.value.toLocaleString();
    }
  });
  if (!entries.length) el("text", {x: 4, y: 20, class: "label"}, chart).textContent = "no data yet";
  return chart;
}

function matrixTable(box, cities, cells) {
  const table = document.createElement("table");
  table.className = "matrix";
  table.dataset.chart = "settlement";
  table.dataset.points = cells.filter((c) => !c.suppressed).length;
  const head = table.insertRow();
  head.insertCell().textContent = "owes ↓ / to →";
  cities.forEach((c) => (head.insertCell().textContent = c));
  cities.forEach((from) => {
    const row = table.insertRow();
    row.insertCell().textContent = from;
    cities.forEach((to) => {
      const c = cells.find((x) => x.from === from && x.to === to);
      const td = row.insertCell();
      if (!c) td.textContent = "–";
      else if (c.suppressed) { td.textContent = "suppressed"; td.className = "suppressed"; }
      else td.textContent = c.value.toLocaleString();
    });
  });
  box.appendChild(table);
}

// The equilibrium report of a depreciating currency: one row per month.
function equilibriumTable(box, e) {
  const cols = ["minted", "depreciated", "spent", "tax", "lapsed", "supply"];
  const table = document.createElement("table");
  table.className = "matrix";
  table.dataset.chart = "equilibrium";
  table.dataset.points = e.months.reduce((n, m) => n + cols.filter((c) => m[c].value !== undefined).length, 0);
  const head = table.insertRow();
  ["month", ...cols].forEach((c) => (head.insertCell().textContent = c));
  e.months.forEach((m) => {
    const row = table.insertRow();
    row.insertCell().textContent = m.month;
    cols.forEach((c) => {
      const td = row.insertCell();
      if (m[c].empty) td.textContent = "–"; // nobody took part in this flow
      else if (m[c].value === undefined) { td.textContent = "suppressed"; td.className = "suppressed"; }
      else td.textContent = m[c].value.toLocaleString();
    });
  });
  box.appendChild(table);
}

function renderEquilibrium(e) {
  const note = `Linear depreciation over ${e.period_years} years (${e.period_days} days), published in advance ` +
    "and the same for everyone. Amounts in the smallest unit. " + e.method;
  equilibriumTable(section("Equilibrium: minted, depreciated, spent and money supply per month", note), e);
  barChart(section("Money supply now and at the steady state",
    "Steady state = issuance per year at the current rate × period / 2."), "steady-state", [
    ["supply now", e.months[e.months.length - 1].supply],
    ["steady state", e.steady_state_supply],
  ]);
  barChart(section("Treasury: municipal tax received in tokens"), "treasury", [["treasury", e.treasury_received]]);
}

// How the figures were protected, as the API states it.
function protectionNote(p) {
  return `Closed days and weeks only. k = ${p.k}; ε = ${p.epsilon_per_day} per day over ` +
    `${p.daily_metrics.length} daily figures, ${p.epsilon_per_week} per week over ${p.weekly_metrics.length} ` +
    `weekly ones, ${p.epsilon_per_month} per month. ${p.method}.`;
}

function renderCity(d) {
  section("How these figures are protected", protectionNote(d.protection));
  const daily = d.daily;
  lineChart(section("Tokens issued and spent per day"), "issued-spent", d.days, [
    {label: "issued", cells: daily.issued},
    {label: "spent", cells: daily.spent},
  ]);
  lineChart(section("Active participants per day"), "active", d.days, [{label: "active", cells: daily.active}]);
  barChart(section("Top rules (tokens issued)"), "top-rules", Object.entries(d.issued_by_rule).slice(0, 10));
  barChart(section("Tokens spent by merchant category"), "spent-by-category", Object.entries(d.spent_by_category));
  barChart(section("Vouchers and prizes redeemed"), "redeemed", [
    ["vouchers", d.vouchers_redeemed],
    ["prizes", d.prizes_redeemed],
  ]);
  barChart(section("Redemptions in partner cities", "Tokens, per closed week, summed."), "redemptions-by-partner",
    Object.entries(d.redemptions_by_partner));
  barChart(section("Appeals", "Appeals filed and decided in closed weeks, and the mean hours from filing to a " +
    "decision (published hours over published decisions)."), "appeals", [
    ["appeals filed", d.appeals],
    ["appeals decided", d.appeals_decided],
    ["mean hours to decision", d.mean_hours_to_decision],
  ]);
  if (d.equilibrium) renderEquilibrium(d.equilibrium);
}

function renderFederation(d) {
  barChart(section("Tokens issued per city", "The sum of each city's published daily figures per rule."),
    "issued-per-city", d.cities.map((c) => [c, d.issued[c]]));
  barChart(section("Redemptions between cities", "Tokens redeemed at partner shops per closed week, " +
    "home city → acceptor city, in the home city's units (noised; summed over the weeks)."),
    "redemptions-between-cities", d.settlement.map((c) => [`${c.from} → ${c.to}`, c]));
  matrixTable(section("Settlement matrix", "What each home city's people redeemed at each acceptor city's shops, " +
    "in the home city's own units, as published. Exact settlement is for the partner cities' finance staff, " +
    "from their nodes."), d.cities, d.settlement);
}

async function main() {
  const body = document.body;
  const response = await fetch(body.dataset.api);
  const data = await response.json();
  document.getElementById("charts").innerHTML = "";
  if (body.dataset.kind === "city") renderCity(data); else renderFederation(data);
  body.dataset.ready = "yes";
}

main().catch((err) => {
  document.getElementById("charts").textContent = "Could not load the figures: " + err;
});
