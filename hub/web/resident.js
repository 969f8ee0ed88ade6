// The resident page: report a problem with a photo and a map point, follow one's own reports.
// Built on the hub's Open311 endpoints (services, requests, requests?mine=true, a request's
// media.jpg), signed in with the resident's token; the hub blurs faces in the photo before storing it.

import { ApiError, adoptTokenFromUrl, api, clearToken, getToken, imageUrl, setToken } from "./api.js";
import { addLabels, currentLang, setLang, t, translate } from "./i18n.js";
import { el, projection, unitGrids } from "./map.js";

addLabels({
  en: {
    "res.title": "Report a problem",
    "res.signin.help": "Open the sign-in link your community sent you, or paste your resident token.",
    "res.new": "New report",
    "res.category": "What is it about?",
    "res.description": "Describe the problem",
    "res.photo": "Photo (optional)",
    "res.photo.privacy": "Faces in the photo are blurred before it is stored.",
    "res.where": "Where? Tap the map",
    "res.locate": "Use my location",
    "res.point": "Point: {lat}, {lon}",
    "res.point.none": "No point chosen yet.",
    "res.point.outside": "That point is outside the service area.",
    "res.point.required": "Tap the map to show where it is.",
    "res.submit": "Send report",
    "res.sending": "Sending…",
    "res.filed": "Thank you. Your request number is {id}.",
    "res.failed": "Not sent: {message}",
    "res.mine": "My reports",
    "res.none": "You have not reported anything yet.",
    "res.status.open": "Open",
    "res.status.closed": "Closed",
    "res.requested": "Reported {when}",
    "res.photo.alt": "Photo of request {id} (faces blurred)",
    "res.geo.failed": "Location unavailable: {message}",
  },
  zh: {
    "res.title": "随手拍·问题上报",
    "res.signin.help": "请打开社区发给您的登录链接，或粘贴您的居民令牌。",
    "res.new": "新的上报",
    "res.category": "问题类别",
    "res.description": "问题描述",
    "res.photo": "照片（可选）",
    "res.photo.privacy": "照片中的人脸会在保存前自动打码。",
    "res.where": "位置：请在地图上点选",
    "res.locate": "使用我的位置",
    "res.point": "位置：{lat}，{lon}",
    "res.point.none": "尚未选择位置。",
    "res.point.outside": "该位置不在服务范围内。",
    "res.point.required": "请在地图上点选问题所在位置。",
    "res.submit": "提交上报",
    "res.sending": "正在提交…",
    "res.filed": "感谢您的上报，受理编号为 {id}。",
    "res.failed": "提交失败：{message}",
    "res.mine": "我的上报",
    "res.none": "您还没有上报过问题。",
    "res.status.open": "办理中",
    "res.status.closed": "已办结",
    "res.requested": "上报于 {when}",
    "res.photo.alt": "受理编号 {id} 的照片（人脸已打码）",
    "res.geo.failed": "无法获取位置：{message}",
  },
});

/** Longest side of a photo as sent: enough to see the problem, small enough for a phone's uplink. */
const MAX_SIDE = 1600;
const OPEN311 = "/open311/v2";
const $ = (sel) => document.querySelector(sel);
const state = { grids: [], services: [], point: null, photo: null, proj: null, objectUrls: [] };

/** POST JSON to an Open311 endpoint; Open311 errors are [{code, description}] lists. */
async function open311Post(path, body) {
  const resp = await fetch(`${OPEN311}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Accept-Language": currentLang(), Authorization: `Bearer ${getToken()}` },
    body: JSON.stringify(body),
  });
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, (Array.isArray(data) && data[0]?.description) || `HTTP ${resp.status}`);
  return data;
}

/** The photo scaled down to MAX_SIDE and re-encoded as JPEG (which also drops EXIF, e.g. GPS tags). */
async function photoDataUrl(file) {
  const bitmap = await createImageBitmap(file);
  const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * k);
  canvas.height = Math.round(bitmap.height * k);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.92);
}

function inside(lon, lat, polygon) {
  let hit = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function drawMap() {
  const svg = $("#map");
  svg.replaceChildren();
  if (!state.grids.length) return;
  const proj = (state.proj = projection(state.grids));
  svg.setAttribute("viewBox", `0 0 ${proj.width} ${proj.height}`);
  for (const g of state.grids) {
    const points = g.polygon.map((p) => `${proj.x(p[0]).toFixed(1)},${proj.y(p[1]).toFixed(1)}`).join(" ");
    const poly = el("polygon", { points });
    poly.dataset.grid = g.code;
    const label = el("text", {
      x: g.polygon.reduce((a, p) => a + proj.x(p[0]), 0) / g.polygon.length,
      y: g.polygon.reduce((a, p) => a + proj.y(p[1]), 0) / g.polygon.length,
    });
    label.textContent = g.name;
    svg.append(poly, label);
  }
  if (state.point) svg.append(el("circle", { class: "pin", cx: proj.x(state.point.lon), cy: proj.y(state.point.lat), r: 14 }));
}

function showPoint() {
  const p = state.point;
  $("#point").textContent = p ? t("res.point", { lat: p.lat.toFixed(5), lon: p.lon.toFixed(5) }) : t("res.point.none");
}

function choose(lon, lat) {
  if (!state.grids.some((g) => inside(lon, lat, g.polygon))) {
    $("#point").textContent = t("res.point.outside");
    return;
  }
  state.point = { lon, lat };
  drawMap();
  showPoint();
}

function onMapClick(ev) {
  if (!state.proj) return;
  const svg = $("#map");
  const m = svg.getScreenCTM().inverse();
  const pt = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m);
  choose(state.proj.lon(pt.x), state.proj.lat(pt.y));
}

function serviceName(s) {
  return currentLang() === "zh" ? s.service_name_zh || s.service_name : s.service_name;
}

function fillServices() {
  const select = $('#report [name="service_code"]');
  const chosen = select.value;
  select.replaceChildren(...state.services.map((s) => new Option(serviceName(s), s.service_code)));
  if (chosen) select.value = chosen;
}

async function loadRequests() {
  const list = $("#requests");
  const rows = await api(`${OPEN311}/requests.json?mine=true`);
  for (const url of state.objectUrls) URL.revokeObjectURL(url);
  state.objectUrls = [];
  if (!rows.length) {
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "empty", textContent: t("res.none") }));
    return;
  }
  const byCode = new Map(state.services.map((s) => [s.service_code, s]));
  list.replaceChildren(
    ...rows.map((r) => {
      const li = document.createElement("li");
      li.dataset.request = r.service_request_id;
      li.dataset.status = r.status;
      const title = document.createElement("strong");
      const service = byCode.get(r.service_code);
      title.textContent = `#${r.service_request_id} · ${service ? serviceName(service) : r.service_code}`;
      const status = document.createElement("span");
      status.className = `status ${r.status}`;
      status.textContent = t(`res.status.${r.status}`);
      const notes = document.createElement("p");
      notes.className = "notes";
      notes.textContent = r.status_notes || "";
      const meta = document.createElement("p");
      meta.className = "meta";
      const when = r.requested_datetime ? new Date(r.requested_datetime).toLocaleString(currentLang() === "zh" ? "zh-CN" : "en") : "";
      meta.textContent = `${t("res.requested", { when })}${r.description ? ` · ${r.description}` : ""}`;
      li.append(title, status, notes, meta);
      if (r.media_url) {
        const img = document.createElement("img");
        img.alt = t("res.photo.alt", { id: r.service_request_id });
        li.append(img);
        imageUrl(r.media_url).then((url) => {
          state.objectUrls.push(url);
          img.src = url;
        });
      }
      return li;
    }),
  );
}

async function submit(ev) {
  ev.preventDefault();
  const form = ev.target;
  const status = $("#report-status");
  status.className = "";
  if (!state.point) {
    status.textContent = t("res.point.required");
    return;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  status.textContent = t("res.sending");
  try {
    const body = {
      service_code: form.service_code.value,
      description: form.description.value,
      lat: state.point.lat,
      long: state.point.lon,
    };
    if (state.photo) body.media = state.photo;
    const [filed] = await open311Post("/requests.json", body);
    status.className = "ok";
    status.dataset.requestId = filed.service_request_id;
    status.textContent = t("res.filed", { id: filed.service_request_id });
    form.reset();
    state.photo = null;
    state.point = null;
    $("#preview").hidden = true;
    drawMap();
    showPoint();
    await loadRequests();
  } catch (err) {
    status.className = "error";
    status.textContent = t("res.failed", { message: err.message });
  } finally {
    button.disabled = false;
  }
}

async function onPhoto(ev) {
  const file = ev.target.files[0];
  state.photo = file ? await photoDataUrl(file) : null;
  const preview = $("#preview");
  preview.hidden = !state.photo;
  if (state.photo) preview.src = state.photo;
  preview.dataset.ready = state.photo ? "1" : "";
}

function locate() {
  navigator.geolocation.getCurrentPosition(
    (pos) => choose(pos.coords.longitude, pos.coords.latitude),
    (err) => ($("#point").textContent = t("res.geo.failed", { message: err.message })),
    { enableHighAccuracy: true, timeout: 10000 },
  );
}

function showSignin(message = "") {
  $("#signin").hidden = false;
  $("#app").hidden = true;
  $("#signout").hidden = true;
  $("#signin-error").textContent = message;
}

async function start() {
  if (!getToken()) return showSignin();
  try {
    const [areas, services] = await Promise.all([api("/api/v1/grids"), api(`${OPEN311}/services.json`)]);
    state.grids = unitGrids(areas);
    state.services = services;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      clearToken();
      return showSignin(t("signin.bad"));
    }
    throw err;
  }
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  fillServices();
  drawMap();
  showPoint();
  await loadRequests();
  document.body.dataset.ready = "1";
}

function relabel() {
  translate();
  $("#lang").textContent = currentLang() === "zh" ? "English" : "中文";
  fillServices();
  drawMap();
  showPoint();
}

function wire() {
  $("#signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("#signin-token").value.trim());
    start();
  });
  $("#signout").addEventListener("click", () => {
    clearToken();
    showSignin();
  });
  $("#lang").addEventListener("click", () => {
    setLang(currentLang() === "zh" ? "en" : "zh");
    relabel();
    if (getToken() && !$("#app").hidden) loadRequests();
  });
  $("#report").addEventListener("submit", submit);
  $('#report [name="photo"]').addEventListener("change", onPhoto);
  $("#map").addEventListener("click", onMapClick);
  $("#locate").addEventListener("click", locate);
}

adoptTokenFromUrl();
wire();
relabel();
start();
