// The camera platform: every camera of the person's subtree with its inventory (location, grid,
// model, analytics), health (stream, fps, last frame age, tamper) and latest redacted snapshot,
// filtered by area and state and paged by the hub (1,800 cameras are never sent at once).

import { api, imageUrl } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";

const PAGE = 50;
const view = { offset: 0, total: 0 };

function num(v, digits = 1) {
  return typeof v === "number" ? v.toFixed(digits) : "—";
}

function thumb(cam) {
  const td = el("td", "thumb");
  if (!cam.snapshot) {
    td.append(el("span", "empty", "—"));
    return td;
  }
  const img = el("img", "snapshot");
  img.alt = `${t("case.snapshot")} ${cam.snapshot.event_id}`;
  img.loading = "lazy";
  td.append(img);
  // thumbnails load after the rows are on screen: the page never waits for images
  imageUrl(`/api/v1/snapshots/${encodeURIComponent(cam.id)}/${encodeURIComponent(cam.snapshot.event_id)}`)
    .then((url) => (img.src = url))
    .catch(() => img.replaceWith(el("span", "empty", t("case.snapshot.none"))));
  return td;
}

function row(cam, gridName) {
  const tr = el("tr", `camera state-${cam.state}${cam.tamper.length ? " tampered" : ""}`);
  tr.dataset.camera = cam.id;
  const conditions = [...cam.tamper.map((c) => t(`cam.cond.${c}`)), ...(cam.stream_lost ? [t("cam.cond.stream_lost")] : [])];
  tr.append(
    thumb(cam),
    el("td", null, cam.id),
    el("td", null, cam.location ?? "—"),
    el("td", null, gridName(cam.grid)),
    el("td", null, cam.model ?? "—"),
    el("td", null, cam.analytics.join(", ") || "—"),
    el("td", `state ${cam.state}`, t(`cam.state.${cam.state}`)),
    el("td", cam.stream_up ? "stream up" : "stream down", t(cam.stream_up ? "cam.stream.up" : "cam.stream.down")),
    el("td", "num", num(cam.fps)),
    el("td", "num", cam.frame_age_s == null ? "—" : `${num(cam.frame_age_s)} s`),
    el("td", conditions.length ? "tamper hot" : "tamper", conditions.join(", ") || "—"),
  );
  return tr;
}

/** Fill the area filter with the areas the person may see (their subtree and what is above it). */
export function fillCameraAreas(areas) {
  const select = document.querySelector("#cam-area");
  const keep = select.value;
  select.replaceChildren(Object.assign(el("option", null, t("board.all")), { value: "" }));
  for (const a of [...areas].sort((x, y) => x.code.localeCompare(y.code))) {
    const indent = "\u00a0\u00a0".repeat(Math.max(0, (a.code.length - 6) / 3));
    select.append(Object.assign(el("option", null, `${indent}${a.name} (${a.code})`), { value: a.code }));
  }
  select.value = keep;
}

/** Show one page of cameras for the form's filters; `move` pages forward (+1) or back (-1). */
export async function showCameras(gridName, move = 0) {
  const form = document.querySelector("#cam-filter");
  view.offset = Math.max(0, Math.min(view.offset + move * PAGE, Math.max(0, view.total - 1)));
  if (move === 0) view.offset = 0;
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(view.offset) });
  if (form.area.value) params.set("area", form.area.value);
  if (form.state.value) params.set("state", form.state.value);
  const res = await api(`/api/v1/cameras?${params}`);
  view.total = res.total;
  const body = document.querySelector("#cam-rows");
  body.replaceChildren(...res.items.map((c) => row(c, gridName)));
  if (!res.items.length) {
    const empty = el("tr", "empty");
    empty.append(el("td", null, t("cam.none")));
    body.append(empty);
  }
  const s = res.summary;
  document.querySelector("#cam-summary").textContent = t("cam.summary", s);
  const last = Math.min(res.offset + res.items.length, res.total);
  document.querySelector("#cam-page").textContent = t("cam.page", { first: res.total ? res.offset + 1 : 0, last, total: res.total });
  document.querySelector("#cam-prev").disabled = res.offset === 0;
  document.querySelector("#cam-next").disabled = last >= res.total;
  body.dataset.loaded = String(res.offset); // for tests and benchmarks: this page is on screen
}
