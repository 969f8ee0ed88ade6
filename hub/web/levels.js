// The level drill-down: a district shows its streets, a street its communities, a community its
// unit grids, each with devices down, active alarms, open and overdue cases and its evaluation.
// The hub decides what a person sees (their subtree); a person with one top area starts inside it.

import { api } from "./api.js";
import { el, pct } from "./dom.js";
import { t } from "./i18n.js";

const COUNTS = ["devices", "devices_down", "active_alarms", "open_cases", "overdue"];

function countCells(tr, unit) {
  for (const key of COUNTS) {
    const td = el("td", `num ${key}${unit[key] > 0 && key !== "devices" ? " hot" : ""}`, String(unit[key]));
    td.dataset.count = key;
    tr.append(td);
  }
}

async function evaluationOf(units, area) {
  if (!units.length) return new Map();
  const params = new URLSearchParams({ by: units[0].level });
  if (area) params.set("area", area);
  try {
    const res = await api(`/api/v1/evaluation?${params}`);
    return new Map(res.groups.map((g) => [g.key, g]));
  } catch (err) {
    console.warn("evaluation per unit failed", err);
    return new Map();
  }
}

function crumbs(path, onOpen) {
  const nav = document.querySelector("#levels-path");
  const root = el("button", "crumb", t("levels.top"));
  root.type = "button";
  root.addEventListener("click", () => onOpen(null));
  nav.replaceChildren(root);
  for (const p of path) {
    const b = el("button", "crumb", `${t(`level.${p.level}`)} · ${p.name}`);
    b.type = "button";
    b.dataset.code = p.code;
    b.addEventListener("click", () => onOpen(p.code));
    nav.append(" › ", b);
  }
}

/** Show the units below `area` (null = the person's top areas; one top area opens at once). */
export async function showLevels(area) {
  const open = (code) => showLevels(code).catch((err) => console.error("levels", err));
  let res = await api(area ? `/api/v1/levels?area=${encodeURIComponent(area)}` : "/api/v1/levels");
  if (!area && res.units.length === 1) {
    area = res.units[0].code;
    res = await api(`/api/v1/levels?area=${encodeURIComponent(area)}`);
  }
  crumbs(res.path, open);
  const totals = document.querySelector("#levels-area");
  totals.replaceChildren();
  if (res.area) {
    const a = res.area;
    totals.append(
      el("strong", null, `${t(`level.${a.level}`)} · ${a.name}`),
      el("span", null, t("levels.totals", { devices: a.devices, down: a.devices_down, alarms: a.active_alarms, cases: a.open_cases, overdue: a.overdue })),
    );
  }
  const evals = await evaluationOf(res.units, area);
  const rows = res.units.map((u) => {
    const tr = el("tr", u.level === "grid" ? "unit leaf" : "unit");
    tr.dataset.code = u.code;
    tr.dataset.level = u.level;
    tr.append(el("td", null, `${u.name} (${u.code})`), el("td", null, t(`level.${u.level}`)));
    countCells(tr, u);
    const ev = evals.get(u.code);
    tr.append(el("td", "num", pct(ev?.closure_rate)), el("td", "num", pct(ev?.on_time_rate)));
    if (u.level !== "grid") tr.addEventListener("click", () => open(u.code));
    return tr;
  });
  const body = document.querySelector("#levels-rows");
  body.replaceChildren(...rows);
  body.dataset.area = area || "";
  if (!rows.length) {
    const empty = el("tr", "empty");
    empty.append(el("td", null, t("levels.none")));
    body.append(empty);
  }
}
