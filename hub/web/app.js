// The operator page: sign-in, grid map, live feed, SLA warnings, case board, devices, evaluation,
// the level drill-down and the camera platform.
// Plain ES modules, no build step. Data comes from the hub's REST API and its SSE stream.

import { actionFields, actionsFor, columnOf, drawBoard, dueText, mayDoStep } from "./board.js";
import { ApiError, adoptTokenFromUrl, api, clearToken, getToken, imageUrl, openStream, setToken } from "./api.js";
import { lineChart } from "./charts.js";
import { fillCameraAreas, showCameras } from "./cameras.js";
import { showCommands } from "./commands.js";
import { currentLang, setLang, t, translate } from "./i18n.js";
import { showLevels } from "./levels.js";
import { drawMap, unitGrids } from "./map.js";

const $ = (sel) => document.querySelector(sel);
const FEED_MAX = 60;
const REFRESH_MS = 15_000;
const MANAGERS = ["operator", "supervisor", "admin"];
const VIEWS = ["overview", "cases", "devices", "evaluation", "levels", "cameras"];
const MANAGER_VIEWS = ["evaluation", "levels", "cameras"];

const state = {
  me: null,
  areas: [],
  grids: [],
  devices: [],
  incidents: new Map(), // open incidents by id
  cases: new Map(), // by id
  view: "overview",
  selectedGrid: null,
  deviceDetail: null,
  stopCommands: () => {},
};

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function toast(text, isError = false) {
  const box = $("#toast");
  box.textContent = text;
  box.className = isError ? "show error" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.className = ""), 5000);
}

function ago(ms) {
  if (ms == null) return t("ago.never");
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? t("ago.s", { n: s }) : t("ago.m", { n: Math.round(s / 60) });
}

function gridName(code) {
  if (!code) return "—";
  const area = state.areas.find((a) => a.code === code);
  return area ? area.name : code;
}

function isManager() {
  return state.me.roles.some((r) => MANAGERS.includes(r));
}

// ------------------------------------------------------------------ sign-in

async function signIn() {
  try {
    state.me = await api("/api/v1/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      clearToken();
      showSignIn(t("signin.bad"));
      return;
    }
    throw err;
  }
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  for (const v of MANAGER_VIEWS) $(`#nav [data-view=${v}]`).hidden = !isManager();
  $("#new-case").hidden = !isManager();
  showWho();
  // a bookmarked view (#cameras, #levels) opens first, before the overview's heavier lists are asked for
  const first = window.location.hash.slice(1);
  if (VIEWS.includes(first) && (isManager() || !MANAGER_VIEWS.includes(first))) await showView(first);
  await loadAll();
  connectStream();
  document.body.dataset.ready = "true"; // for tests and wall-screen watchdogs: data loaded
  setInterval(() => refresh().catch((err) => console.warn("refresh failed", err)), REFRESH_MS);
}

function showWho() {
  const me = state.me;
  $("#who").textContent = `${me.name} · ${me.roles.map((r) => t(`role.${r}`)).join(", ")}`;
  $("#who").dataset.person = me.id;
}

function showSignIn(error = "") {
  $("#signin").hidden = false;
  $("#app").hidden = true;
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#signin-error").textContent = error;
}

// ------------------------------------------------------------------ data

async function loadAll() {
  const [areas, devices, incidents, cases] = await Promise.all([
    api("/api/v1/grids"),
    api("/api/v1/devices").catch(() => []),
    api("/api/v1/incidents?state=open&limit=1000").catch(() => []),
    api("/api/v1/cases?limit=500"),
  ]);
  state.areas = areas;
  state.grids = unitGrids(areas);
  state.devices = devices;
  state.incidents = new Map(incidents.map((i) => [i.id, i]));
  state.cases = new Map(cases.map((c) => [c.id, c]));
  fillGridSelects();
  render();
}

async function refresh() {
  const [devices, incidents, cases] = await Promise.all([
    api("/api/v1/devices").catch(() => state.devices),
    api("/api/v1/incidents?state=open&limit=1000").catch(() => [...state.incidents.values()]),
    api("/api/v1/cases?limit=500"),
  ]);
  state.devices = devices;
  state.incidents = new Map(incidents.map((i) => [i.id, i]));
  state.cases = new Map(cases.map((c) => [c.id, c]));
  render();
}

function fillGridSelects() {
  const board = $("#board-grid");
  board.replaceChildren(Object.assign(h("option", null, t("board.all")), { value: "" }));
  const form = $("#new-case-grid");
  form.replaceChildren();
  for (const g of state.grids) {
    board.append(Object.assign(h("option", null, `${g.name} (${g.code})`), { value: g.code }));
    form.append(Object.assign(h("option", null, `${g.name} (${g.code})`), { value: g.code }));
  }
  fillCameraAreas(state.areas);
}

// ------------------------------------------------------------------ rendering

function render() {
  renderMap();
  renderWarnings();
  renderBoard();
  if (state.view === "devices") renderDevices(); // a street's 1,800 cameras: build the table only when shown
}

function gridStats() {
  const stats = new Map(state.grids.map((g) => [g.code, { openCases: 0, alarms: 0, devicesUp: 0, devicesAll: 0 }]));
  for (const c of state.cases.values()) {
    const s = stats.get(c.grid);
    if (s && !["closed", "evaluated", "cancelled", "merged"].includes(c.state)) s.openCases += 1;
  }
  for (const i of state.incidents.values()) {
    const s = stats.get(i.grid);
    if (s && i.state === "open") s.alarms += 1;
  }
  for (const d of state.devices) {
    const s = stats.get(d.grid);
    if (!s) continue;
    s.devicesAll += 1;
    if (d.state === "online") s.devicesUp += 1;
  }
  return stats;
}

function renderMap() {
  drawMap($("#map"), state.grids, gridStats(), state.selectedGrid, (code) => {
    state.selectedGrid = code;
    $("#board-grid").value = code || "";
    render();
  });
}

function renderWarnings() {
  const list = $("#warnings");
  const warn = [...state.cases.values()]
    .filter((c) => c.sla && (c.sla.level === "yellow" || c.sla.level === "red"))
    .sort((a, b) => (a.sla.due_ms ?? 0) - (b.sla.due_ms ?? 0));
  if (!warn.length) {
    list.replaceChildren(h("li", "empty", t("warn.none")));
    return;
  }
  list.replaceChildren(
    ...warn.map((c) => {
      const li = h("li", `warning sla-${c.sla.level}`);
      li.dataset.case = c.id;
      li.append(
        h("span", `badge ${c.sla.level}`, t(c.sla.level === "red" ? "warn.red" : "warn.yellow")),
        h("span", null, ` #${c.id} ${c.title} · ${gridName(c.grid)} · ${t(`stage.${columnOf(c)}`)} · ${dueText(c)}`),
      );
      li.addEventListener("click", () => openCase(c));
      return li;
    }),
  );
}

function renderBoard() {
  const grid = $("#board-grid").value;
  const cases = [...state.cases.values()].filter((c) => !grid || c.grid === grid).sort((a, b) => b.id - a.id);
  drawBoard($("#board"), cases, state.me, gridName, startAction, openCase);
}

function renderDevices() {
  const rows = state.devices
    .filter((d) => !state.selectedGrid || d.grid === state.selectedGrid)
    .map((d) => {
      const tr = h("tr");
      tr.dataset.device = d.id;
      const latest = Object.keys(d.latest).sort().map((k) => {
        const v = d.latest[k];
        return `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : v}`;
      });
      tr.append(
        h("td", null, d.id),
        h("td", null, d.kind ?? ""),
        h("td", null, gridName(d.grid)),
        h("td", `state ${d.state}`, d.state + (d.flapping ? " ~" : "")),
        h("td", null, ago(d.last_seen_ms)),
        h("td", "latest", latest.join("  ")),
      );
      tr.addEventListener("click", () => showDevice(d));
      return tr;
    });
  $("#devices").replaceChildren(...rows);
  const down = state.devices.filter((d) => d.state !== "online").length;
  $("#devices-summary").textContent = t("devices.summary", { n: state.devices.length, online: state.devices.length - down, down });
}

async function showDevice(d) {
  state.deviceDetail = d.id;
  const box = $("#device-detail");
  box.replaceChildren(h("h3", null, t("devices.history", { device: d.id })));
  state.stopCommands();
  const commands = h("div", "device-commands");
  box.append(commands);
  state.stopCommands = await showCommands(commands, d, toast);
  if (state.deviceDetail !== d.id) return;
  const metrics = Object.keys(d.latest).filter((k) => typeof d.latest[k] === "number").sort().slice(0, 6);
  const charts = await Promise.all(
    metrics.map(async (metric) => {
      try {
        const params = new URLSearchParams({ device: d.id, metric, every: "30" });
        const series = await api(`/api/v1/series?${params}`);
        return lineChart(metric, series.rows, t("devices.nodata"));
      } catch (err) {
        return h("p", "error", t("error.load", { what: metric, message: err.message }));
      }
    }),
  );
  if (state.deviceDetail === d.id) box.append(...charts);
}

// ------------------------------------------------------------------ live feed

function feedLine(kind, text, cls, data = {}) {
  const li = h("li", `feed-item kind-${kind} ${cls || ""}`);
  li.dataset.kind = kind;
  for (const [k, v] of Object.entries(data)) if (v != null) li.dataset[k] = v;
  li.append(h("time", null, new Date().toLocaleTimeString()), h("span", null, text));
  const feed = $("#feed");
  feed.prepend(li);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
  $("#feed-empty").hidden = true;
}

function onIncident(data) {
  if (data.state === "open") state.incidents.set(data.id, data);
  else state.incidents.delete(data.id);
  const cls = data.state === "open" ? `sev-${data.severity}` : "cleared";
  feedLine("incident", `${data.title} · ${gridName(data.grid)} · ${data.change || data.state}`, cls, {
    grid: data.grid,
    incident: data.id,
  });
  renderMap();
}

function onCase(data) {
  const c = data.case;
  state.cases.set(c.id, c);
  const who = data.actor ? ` (${data.actor})` : "";
  feedLine("case", `#${c.id} ${c.title} · ${t(`action.${data.event}`)}${who} → ${c.state}`, `sla-${c.sla?.level}`, {
    case: c.id,
    grid: c.grid,
  });
  render();
}

function onDevice(data) {
  const i = state.devices.findIndex((d) => d.id === data.id);
  if (i >= 0) state.devices[i] = { ...state.devices[i], ...data };
  else state.devices.push(data);
  if (data.old_state && data.old_state !== "unknown" && data.state !== "online") {
    feedLine("device", `${data.id} · ${data.old_state} → ${data.state} · ${gridName(data.grid)}`, "device-down", { grid: data.grid });
  }
  renderMap();
  if (state.view === "devices") renderDevices();
}

let stream = null;

function connectStream() {
  stream?.close(); // a language switch reconnects: the hub writes the stream's texts in the page's language
  const source = (stream = openStream(["incident", "case", "device", "data_loss"]));
  const live = $("#live");
  source.onopen = () => {
    live.textContent = t("feed.live");
    live.className = "live on";
  };
  source.onerror = () => {
    live.textContent = t("feed.offline");
    live.className = "live off";
  };
  const handle = (fn) => (ev) => {
    try {
      fn(JSON.parse(ev.data));
    } catch (err) {
      console.warn("bad stream event", ev.type, err);
    }
  };
  source.addEventListener("incident", handle(onIncident));
  source.addEventListener("case", handle(onCase));
  source.addEventListener("device", handle(onDevice));
  source.addEventListener(
    "data_loss",
    handle((d) => feedLine("data_loss", `${d.device_id ?? ""} · data loss ${d.first ?? ""}–${d.last ?? ""}`, "device-down")),
  );
}

// ------------------------------------------------------------------ case actions

let pending = null;

function startAction(c, action) {
  pending = { c, action, read: actionFields($("#action-fields"), action) };
  $("#action-title").textContent = `${t(`action.${action}`)} · #${c.id} ${c.title}`;
  $("#action-error").textContent = "";
  $("#action-dialog").showModal();
}

async function submitAction(ev) {
  ev.preventDefault();
  if (!pending) return;
  const { c, action, read } = pending;
  try {
    const res = await api(`/api/v1/cases/${c.id}/${action}`, {
      method: "POST",
      body: read(),
      headers: { "If-Match": c.etag, "Idempotency-Key": crypto.randomUUID() },
    });
    state.cases.set(res.id, res);
    $("#action-dialog").close();
    pending = null;
    toast(t("form.done", { action: t(`action.${action}`), id: res.id, state: res.state }));
    render();
    if ($("#case-dialog").open) openCase(res);
  } catch (err) {
    $("#action-error").textContent = t("form.failed", { message: err.message });
  }
}

async function submitNewCase(ev) {
  ev.preventDefault();
  const data = new FormData(ev.target);
  const body = Object.fromEntries(["title", "category", "severity", "grid", "description"].map((k) => [k, String(data.get(k) || "")]));
  try {
    const c = await api("/api/v1/cases", { method: "POST", body });
    state.cases.set(c.id, c);
    $("#new-case-dialog").close();
    ev.target.reset();
    toast(t("form.done", { action: t("board.new"), id: c.id, state: c.state }));
    render();
  } catch (err) {
    $("#new-case-error").textContent = t("form.failed", { message: err.message });
  }
}

// ------------------------------------------------------------------ case detail

async function openCase(c) {
  const box = $("#case-detail");
  const dl = h("dl");
  const row = (k, v) => dl.append(h("dt", null, t(k)), h("dd", null, v ?? "—"));
  row("case.state", c.state);
  row("board.grid", `${gridName(c.grid)} (${c.grid ?? "—"})`);
  row("case.category", c.category);
  row("case.severity", c.severity);
  row("case.assignees", c.assignees.join(", "));
  row("case.handler", c.handler);
  row("case.created", new Date(c.created_ms).toLocaleString());
  const actions = h("div", "actions");
  for (const a of actionsFor(c, state.me, { detail: true })) {
    const b = h("button", "action", t(`action.${a}`));
    b.type = "button";
    b.dataset.action = a;
    b.addEventListener("click", () => startAction(c, a));
    actions.append(b);
  }
  const trail = h("ol", "trail");
  const incidents = h("div", "incidents");
  box.replaceChildren(h("h3", null, `#${c.id} ${c.title}`), h("p", null, c.description || ""), dl, actions);
  if (c.plan_steps?.length) box.append(h("h4", null, t("case.plan", { plan: c.plan })), planList(c));
  box.append(h("h4", null, t("case.audit")), trail);
  if (c.incident_ids.length) box.append(h("h4", null, t("case.incidents")), incidents);
  box.dataset.case = c.id;
  if (!$("#case-dialog").open) $("#case-dialog").showModal();
  try {
    const events = await api(`/api/v1/cases/${c.id}/audit`);
    trail.replaceChildren(
      ...events.map((e) => h("li", null, `${new Date(e.ts_ms).toLocaleString()} · ${e.actor} · ${e.action}${e.from ? ` ${e.from} → ${e.to}` : ""}${e.note ? ` · ${e.note}` : ""}`)),
    );
  } catch (err) {
    trail.replaceChildren(h("li", "error", t("error.load", { what: t("case.audit"), message: err.message })));
  }
  if (c.alarm_raised_ms != null && c.alarm_received_ms - c.alarm_raised_ms >= 60_000) {
    row("case.alarm", alarmTimes({ raised_ms: c.alarm_raised_ms, received_ms: c.alarm_received_ms, hist: true }));
  }
  for (const id of c.incident_ids.slice(0, 5)) {
    try {
      const inc = await api(`/api/v1/incidents/${id}`);
      const item = h("div", "incident", `${inc.title} · ${inc.device_id ?? ""} · ${inc.state}`);
      item.append(h("p", inc.hist ? "alarm-times late" : "alarm-times", alarmTimes(inc)));
      incidents.append(item);
      if (!state.me.evidence) continue; // evidence is role-bound: operators, supervisors, admins
      for (const snap of inc.snapshots || []) {
        try {
          const img = h("img", "snapshot");
          img.alt = `${t("case.snapshot")} ${snap.event_id}`;
          img.src = await imageUrl(snap.href);
          item.append(img);
        } catch {
          item.append(h("p", "empty", t("case.snapshot.none")));
        }
      }
    } catch (err) {
      incidents.append(h("p", "error", t("error.load", { what: `#${id}`, message: err.message })));
    }
  }
}

/** The case's emergency-plan checklist: who does each step and by when, who did it, a button for what `me` may do. */
function planList(c) {
  const list = h("ol", "plan");
  for (const step of c.plan_steps) {
    const who = step.role ? t(`role.${step.role}`) : step.force;
    const when = step.done_ms != null ? t("plan.done", { who: step.done_by, when: new Date(step.done_ms).toLocaleString() }) : t("plan.open", { when: new Date(step.due_ms).toLocaleString() });
    const li = h("li", step.done_ms != null ? "done" : "", `${step.name} · ${t(`plan.phase.${step.phase}`)} · ${who} · ${when}`);
    li.dataset.step = step.name;
    if (mayDoStep(step, state.me)) {
      const b = h("button", "action", t("plan.do"));
      b.type = "button";
      b.addEventListener("click", () => doStep(c, step.name));
      li.append(" ", b);
    }
    list.append(li);
  }
  return list;
}

async function doStep(c, name) {
  try {
    const res = await api(`/api/v1/cases/${c.id}/plan/${encodeURIComponent(name)}`, { method: "POST", body: {} });
    state.cases.set(res.id, res);
    toast(t("form.done", { action: name, id: res.id, state: res.state }));
    render();
    openCase(res);
  } catch (err) {
    toast(t("form.failed", { message: err.message }), true);
  }
}

// ------------------------------------------------------------------ evaluation

async function runEvaluation(ev) {
  ev?.preventDefault();
  const form = $("#eval-form");
  const params = new URLSearchParams({ by: form.by.value });
  if (form.period.value.trim()) params.set("period", form.period.value.trim());
  const pct = (v) => (v == null ? "—" : `${(v * 100).toFixed(0)}%`);
  const secs = (v) => (v == null ? "—" : v < 3600 ? `${Math.round(v / 60)} min` : `${(v / 3600).toFixed(1)} h`);
  try {
    const res = await api(`/api/v1/evaluation?${params}`);
    $("#eval-error").textContent = "";
    $("#eval-rows").replaceChildren(
      ...res.groups.map((g) => {
        const tr = h("tr");
        tr.dataset.key = g.key;
        const key = form.by.value === "grid" ? `${gridName(g.key)} (${g.key})` : g.key;
        for (const v of [key, g.cases, g.closed, pct(g.closure_rate), pct(g.on_time_rate), pct(g.rework_rate), secs(g.response_s_median), g.satisfaction == null ? "—" : g.satisfaction.toFixed(1)]) {
          tr.append(h("td", null, String(v)));
        }
        return tr;
      }),
    );
  } catch (err) {
    $("#eval-error").textContent = err.status === 403 ? t("eval.forbidden") : t("error.load", { what: t("eval.title"), message: err.message });
  }
}

// ------------------------------------------------------------------ wiring

function showView(view) {
  state.view = view;
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  for (const b of document.querySelectorAll("#nav button")) b.classList.toggle("active", b.dataset.view === view);
  window.history.replaceState(null, "", `${window.location.pathname}${window.location.search}#${view}`);
  if (view === "devices") renderDevices();
  if (view === "evaluation") return runEvaluation();
  if (view === "levels") return showLevels(null).catch((err) => failed("#levels-error", "nav.levels", err));
  if (view === "cameras") return loadCameras(0);
  return Promise.resolve();
}

function failed(where, what, err) {
  $(where).textContent = err.status === 403 ? t("levels.error") : t("error.load", { what: t(what), message: err.message });
}

function loadCameras(move) {
  $("#cam-error").textContent = "";
  return showCameras(gridName, move).catch((err) => failed("#cam-error", "nav.cameras", err));
}

function applyLang() {
  translate();
  $("#lang").textContent = currentLang() === "zh" ? "English" : "中文";
  if (state.me) {
    showWho();
    fillGridSelects();
    render();
    refresh().catch((err) => toast(err.message, true)); // titles the hub wrote, now in this language
    connectStream();
  }
}

function wire() {
  for (const b of document.querySelectorAll("#nav button")) b.addEventListener("click", () => showView(b.dataset.view));
  $("#lang").addEventListener("click", () => {
    setLang(currentLang() === "zh" ? "en" : "zh");
    applyLang();
  });
  $("#signout").addEventListener("click", () => {
    clearToken();
    window.location.reload();
  });
  $("#signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("#signin-token").value.trim());
    signIn().catch((err) => showSignIn(err.message));
  });
  $("#action-form").addEventListener("submit", submitAction);
  $("#action-cancel").addEventListener("click", () => $("#action-dialog").close());
  $("#new-case").addEventListener("click", () => {
    $("#new-case-error").textContent = "";
    $("#new-case-dialog").showModal();
  });
  $("#new-case-form").addEventListener("submit", submitNewCase);
  $("#new-case-cancel").addEventListener("click", () => $("#new-case-dialog").close());
  $("#case-close").addEventListener("click", () => $("#case-dialog").close());
  $("#board-grid").addEventListener("change", () => {
    state.selectedGrid = $("#board-grid").value || null;
    render();
  });
  $("#eval-form").addEventListener("submit", runEvaluation);
  $("#cam-filter").addEventListener("change", () => loadCameras(0));
  $("#cam-filter").addEventListener("submit", (ev) => ev.preventDefault());
  $("#cam-prev").addEventListener("click", () => loadCameras(-1));
  $("#cam-next").addEventListener("click", () => loadCameras(1));
}

adoptTokenFromUrl();
wire();
applyLang();
if (getToken()) signIn().catch((err) => showSignIn(err.message));
else showSignIn();

// When an alarm was raised on the device and when the hub received it (apart for an alarm replayed
// from the device's buffer after an outage).
function alarmTimes(inc) {
  const raised = new Date(inc.raised_ms).toLocaleString();
  if (!inc.hist) return t("incident.raised", { raised });
  const late = Math.round((inc.received_ms - inc.raised_ms) / 1000);
  return t("incident.raised.late", { raised, received: new Date(inc.received_ms).toLocaleString(), late });
}
