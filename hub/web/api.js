// Token handling and calls to the hub's REST API.
// A sign-in link carries ?token=…; it moves to sessionStorage and leaves the address bar
// at once (history.replaceState), so it is not bookmarked, shared or shown on a wall screen.
// Every call says the page's language (Accept-Language; the stream's ?lang=), so the texts the hub
// writes (incident and case titles, escalation notes, Open311 status sentences) follow the switch.

import { currentLang } from "./i18n.js";

const KEY = "gs.token";

/** Take ?token= from the URL (if any) into sessionStorage and strip it from the address bar. */
export function adoptTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  url.searchParams.delete("token");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  if (token.trim()) sessionStorage.setItem(KEY, token.trim());
}

export function getToken() {
  return sessionStorage.getItem(KEY);
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

/** An HTTP error that carries the status and the API's reason/message. */
export class ApiError extends Error {
  constructor(status, detail) {
    const message = typeof detail === "string" ? detail : detail?.message || detail?.reason || JSON.stringify(detail);
    super(message || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

/** fetch with the Bearer token; JSON in and out; throws ApiError on a non-2xx answer. */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { "Accept-Language": currentLang(), ...headers } };
  const token = getToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) {
    let detail = `HTTP ${resp.status}`;
    try {
      detail = (await resp.json()).detail ?? detail;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(resp.status, detail);
  }
  if (resp.status === 204) return null;
  return resp.json();
}

/** An image (e.g. a snapshot) fetched with the token, as an object URL for <img src>. */
export async function imageUrl(path) {
  const token = getToken();
  const resp = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!resp.ok) throw new ApiError(resp.status, `HTTP ${resp.status}`);
  return URL.createObjectURL(await resp.blob());
}

/** The live stream (EventSource cannot send headers, so the token rides in ?token=). */
export function openStream(kinds) {
  const params = new URLSearchParams({ kinds: kinds.join(","), lang: currentLang() });
  const token = getToken();
  if (token) params.set("token", token);
  return new EventSource(`/api/v1/stream?${params}`);
}
