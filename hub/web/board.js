// The case board: columns by stage, SLA colours, and the actions the signed-in person may take.
// Which actions show is derived from the case's allowed_actions (its state), the role table of
// hub/cases/machine.py (ACTION_ROLES) and who is assigned/handling; the API's 403/409 is final.

import { t } from "./i18n.js";

export const COLUMNS = ["to_dispatch", "dispatched", "accepted", "handling", "feedback", "verified", "closed"];

const COLUMN_OF = {
  reported: "to_dispatch",
  registered: "to_dispatch",
  returned: "to_dispatch",
  dispatched: "dispatched",
  accepted: "accepted",
  handling: "handling",
  feedback: "feedback",
  verified: "verified",
  closed: "closed",
  evaluated: "closed",
};

const MANAGERS = ["operator", "supervisor", "admin"];
const FIELD = ["grid_worker", "force_member"];
/** Mirror of ACTION_ROLES in hub/cases/machine.py (admins may do everything). */
export const ACTION_ROLES = {
  register: MANAGERS,
  dispatch: MANAGERS,
  accept: FIELD,
  handle: FIELD,
  pause: FIELD,
  resume: FIELD,
  feedback: FIELD,
  verify: ["supervisor", "operator", "admin", "grid_worker"],
  close: MANAGERS,
  evaluate: ["supervisor", "resident", "admin"],
  return: FIELD,
  merge: MANAGERS,
  cancel: MANAGERS,
};
/** Shown on the cards; merge and cancel only in the case detail. */
const CARD_ACTIONS = ["register", "dispatch", "accept", "return", "handle", "pause", "resume", "feedback", "verify", "close", "evaluate"];

/** Actions `me` ({id, roles}) may take on `c`, in the order of the flow. */
export function actionsFor(c, me, { detail = false } = {}) {
  const roles = new Set(me.roles);
  const mine = (a) => roles.has("admin") || ACTION_ROLES[a]?.some((r) => roles.has(r));
  return (c.allowed_actions || []).filter((a) => {
    if (!mine(a) || (!detail && !CARD_ACTIONS.includes(a))) return false;
    if ((a === "accept" || a === "return") && !c.assignees.includes(me.id)) return false;
    if (["handle", "pause", "resume", "feedback"].includes(a) && c.handler !== me.id) return false;
    if (a === "pause" && c.paused) return false;
    if ((a === "resume" && !c.paused) || (a === "feedback" && c.paused)) return false;
    if (a === "verify" && c.handler === me.id) return false;
    if (a === "handle" && c.state !== "accepted") return false;
    return true;
  });
}

/** Whether `me` may mark an emergency-plan step done: its role, a force member (the hub checks the
 * force's kind), or staff recording it on their behalf -- as hub/cases/plans.py may_do. */
export function mayDoStep(step, me) {
  const roles = new Set(me.roles);
  if (step.done_ms != null) return false;
  if (["operator", "supervisor", "admin"].some((r) => roles.has(r))) return true;
  return step.role ? roles.has(step.role) : roles.has("force_member");
}

export function columnOf(c) {
  return COLUMN_OF[c.state] || null;
}

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function dueText(c) {
  if (!c.sla || c.sla.due_ms == null) return "";
  return t("case.due", { when: new Date(c.sla.due_ms).toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }) });
}

/** One case card with its SLA level and action buttons (`onAction(case, action)`, `onOpen(case)`). */
function card(c, me, gridName, onAction, onOpen) {
  const level = c.sla?.level || "none";
  const node = h("article", `card sla-${level}${c.breached ? " breached" : ""}`);
  node.dataset.case = c.id;
  node.dataset.state = c.state;
  const head = h("header");
  const link = h("button", "case-link", `#${c.id} ${c.title}`);
  link.type = "button";
  link.addEventListener("click", () => onOpen(c));
  head.append(link);
  node.append(head);
  const meta = h("div", "meta", `${gridName(c.grid)} · ${c.category} · ${c.severity}`);
  node.append(meta);
  if (c.assignees.length) node.append(h("div", "meta", `${t("case.assignees")}: ${c.assignees.join(", ")}`));
  const sla = h("div", "sla");
  if (level === "yellow" || level === "red") sla.append(h("span", `badge ${level}`, t(level === "red" ? "warn.red" : "warn.yellow")));
  else if (c.breached) sla.append(h("span", "badge red", t("case.breached")));
  if (c.rework_count) sla.append(h("span", "badge", t("case.rework", { n: c.rework_count })));
  const due = dueText(c);
  if (due) sla.append(h("span", "due", due));
  node.append(sla);
  const actions = actionsFor(c, me);
  if (actions.length) {
    const bar = h("div", "actions");
    for (const a of actions) {
      const b = h("button", "action", t(`action.${a}`));
      b.type = "button";
      b.dataset.action = a;
      b.addEventListener("click", () => onAction(c, a));
      bar.append(b);
    }
    node.append(bar);
  }
  return node;
}

/** Render the board into `root` from `cases` (newest first). */
export function drawBoard(root, cases, me, gridName, onAction, onOpen) {
  const cols = new Map(COLUMNS.map((k) => [k, []]));
  for (const c of cases) {
    const col = columnOf(c);
    if (col) cols.get(col).push(c);
  }
  root.replaceChildren(
    ...COLUMNS.map((k) => {
      const col = h("section", "column");
      col.dataset.column = k;
      const items = cols.get(k);
      col.append(h("h3", null, `${t(`stage.${k}`)} (${items.length})`));
      if (!items.length) col.append(h("p", "empty", t("board.empty")));
      for (const c of items) col.append(card(c, me, gridName, onAction, onOpen));
      return col;
    }),
  );
}

/** Fill the action form for `action`; returns a function reading the request body from it. */
export function actionFields(fieldset, action) {
  const rows = [];
  const input = (name, label, attrs = {}) => {
    const wrap = h("label", null, label);
    const field = h(attrs.tag || "input");
    field.name = name;
    for (const [k, v] of Object.entries(attrs)) if (k !== "tag") field.setAttribute(k, v);
    wrap.append(field);
    rows.push(wrap);
    return field;
  };
  if (action === "dispatch") input("assignees", t("form.assignees"), { placeholder: "gw-001, fire-01" });
  if (action === "verify") {
    const sel = input("result", t("form.result"), { tag: "select" });
    for (const v of ["pass", "fail"]) sel.append(Object.assign(h("option", null, t(`form.${v}`)), { value: v }));
  }
  if (action === "return" || action === "cancel") input("reason", t("form.reason"), { required: "" });
  if (action === "merge") input("into", t("form.into"), { type: "number", min: "1", required: "" });
  if (action === "evaluate") input("satisfaction", t("form.satisfaction"), { type: "number", min: "1", max: "5", value: "5", required: "" });
  input("note", t("form.note"), { tag: "textarea", rows: "2" });
  fieldset.replaceChildren(...rows);
  return () => {
    const data = new FormData(fieldset.form);
    const body = { note: String(data.get("note") || "") };
    const assignees = String(data.get("assignees") || "").split(",").map((s) => s.trim()).filter(Boolean);
    if (assignees.length) body.assignees = assignees;
    if (data.has("result")) body.result = String(data.get("result"));
    if (data.has("reason")) body.reason = String(data.get("reason"));
    if (data.has("into")) body.into = Number(data.get("into"));
    if (data.has("satisfaction")) body.satisfaction = Number(data.get("satisfaction"));
    return body;
  };
}
