// The grid map: one SVG polygon per unit grid (15-digit code), drawn from the directory's
// lon/lat polygons, coloured by what is happening there (alarm > open cases > devices down > quiet).

import { t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const PAD = 12;

export function el(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** Unit grids (15-digit codes) that have a polygon of at least 3 points. */
export function unitGrids(areas) {
  return areas.filter((a) => a.code.length === 15 && Array.isArray(a.polygon) && a.polygon.length >= 3);
}

/** quiet | devices | cases | alarm for a grid's counts. */
export function gridStatus(s) {
  if (s.alarms > 0) return "alarm";
  if (s.openCases > 0) return "cases";
  if (s.devicesAll > 0 && s.devicesUp < s.devicesAll) return "devices";
  return "ok";
}

/**
 * Screen coordinates for `grids` in a viewBox `width` wide: x(lon), y(lat) and back (lon(x), lat(y)).
 * Equirectangular with cos(lat): a square grid cell on the ground stays square on screen.
 */
export function projection(grids, width = 1000) {
  const pts = grids.flatMap((g) => g.polygon);
  const lons = pts.map((p) => p[0]);
  const lats = pts.map((p) => p[1]);
  const [lon0, lon1, lat0, lat1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const kx = Math.cos((((lat0 + lat1) / 2) * Math.PI) / 180);
  const w = Math.max((lon1 - lon0) * kx, 1e-9);
  const h = Math.max(lat1 - lat0, 1e-9);
  const height = Math.max(200, Math.round((width * h) / w));
  const scale = Math.min((width - 2 * PAD) / w, (height - 2 * PAD) / h);
  return {
    width,
    height,
    x: (lon) => PAD + (lon - lon0) * kx * scale,
    y: (lat) => height - PAD - (lat - lat0) * scale,
    lon: (x) => lon0 + (x - PAD) / (kx * scale),
    lat: (y) => lat0 + (height - PAD - y) / scale,
  };
}

/**
 * Draw `grids` into `svg` (viewBox sized to the container's aspect), with counts from `stats`
 * (code -> {openCases, alarms, devicesUp, devicesAll}); `onSelect(code)` on click.
 */
export function drawMap(svg, grids, stats, selected, onSelect) {
  svg.replaceChildren();
  if (!grids.length) {
    const text = el("text", { x: 10, y: 24, class: "map-empty" });
    text.textContent = t("map.none");
    svg.append(text);
    return;
  }
  const { x, y, width, height } = projection(grids);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  for (const g of grids) {
    const s = stats.get(g.code) || { openCases: 0, alarms: 0, devicesUp: 0, devicesAll: 0 };
    const status = gridStatus(s);
    const group = el("g", { class: `grid status-${status}${g.code === selected ? " selected" : ""}` });
    group.dataset.grid = g.code;
    group.dataset.status = status;
    const points = g.polygon.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const poly = el("polygon", { points });
    const title = el("title");
    title.textContent = `${g.name} (${g.code})`;
    poly.append(title);
    const cx = g.polygon.reduce((a, p) => a + x(p[0]), 0) / g.polygon.length;
    const cy = g.polygon.reduce((a, p) => a + y(p[1]), 0) / g.polygon.length;
    const xs = g.polygon.map((p) => x(p[0]));
    const fs = Math.max(7, Math.min(48, (Math.max(...xs) - Math.min(...xs)) / 10)); // text fits the cell
    const name = el("text", { x: cx, y: cy - fs * 0.8, class: "grid-name", "font-size": fs * 1.15 });
    name.textContent = g.name;
    const cases = el("text", { x: cx, y: cy + fs * 0.5, class: "grid-info", "font-size": fs });
    cases.textContent = t("map.cases", { n: s.openCases });
    const devs = el("text", { x: cx, y: cy + fs * 1.7, class: "grid-info", "font-size": fs });
    devs.textContent = t("map.devices", { up: s.devicesUp, all: s.devicesAll });
    group.append(poly, name, cases, devs);
    group.addEventListener("click", () => onSelect(g.code === selected ? null : g.code));
    svg.append(group);
  }
}
