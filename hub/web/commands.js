// Device commands on the device view: one button per op the device's kind offers, and the
// device's recent commands with their state (queued → sent → acked | failed | expired | timed_out).

import { api } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";

const FINAL = new Set(["acked", "failed", "expired", "timed_out"]);
const TTL_S = 30;
const POLL_MS = 500;
let opsCache = null;

async function commandOps() {
  if (opsCache === null) opsCache = await api("/api/v1/command-ops");
  return opsCache;
}

function commandLine(c) {
  const row = el("li", `command state-${c.state}`);
  row.dataset.command = c.id;
  row.dataset.state = c.state;
  const result = c.ack ? ` · ${c.ack.detail ?? c.ack.result}` : "";
  row.textContent = `${t(`cmd.op.${c.op}`)} · ${t(`cmd.state.${c.state}`)}${result} · ${c.requested_by}`;
  return row;
}

/** Fill ``box`` with the command buttons and history of ``device``; returns a stop function. */
export async function showCommands(box, device, toast) {
  let stopped = false;
  let timer = null;
  const list = el("ul", "commands");
  const refresh = async () => {
    if (stopped) return;
    const commands = await api(`/api/v1/devices/${encodeURIComponent(device.id)}/commands?limit=10`);
    list.replaceChildren(...commands.map(commandLine));
    clearTimeout(timer);
    if (commands.some((c) => !FINAL.has(c.state))) timer = setTimeout(() => refresh().catch(() => {}), POLL_MS);
  };
  let info;
  try {
    info = await commandOps();
  } catch {
    return () => {};
  }
  if (!info.may_command) return () => {};
  const ops = info.by_kind[device.kind] ?? info.unknown_kind;
  const bar = el("div", "command-bar");
  bar.append(el("span", "command-title", t("cmd.title")));
  for (const op of ops) {
    const button = el("button", "command-op", t(`cmd.op.${op}`));
    button.dataset.op = op;
    button.addEventListener("click", async () => {
      const args = {};
      if (op === "set_interval") {
        const seconds = Number(window.prompt(t("cmd.prompt.seconds"), "30"));
        if (!(seconds > 0)) return;
        args.seconds = seconds;
      }
      button.disabled = true;
      try {
        await api(`/api/v1/devices/${encodeURIComponent(device.id)}/commands`, {
          method: "POST",
          body: { op, args, ttl_s: TTL_S },
        });
        await refresh();
      } catch (err) {
        toast(t("cmd.refused", { message: err.message }), true);
      } finally {
        button.disabled = false;
      }
    });
    bar.append(button);
  }
  box.append(bar, list);
  await refresh().catch(() => {});
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
