// A small SVG line chart for a device metric's history (rows from GET /api/v1/series).

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function fmt(v) {
  return Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(2);
}

/** A chart of `rows` ([{ts_ms, value}]) titled `label`; an empty note when no rows. */
export function lineChart(label, rows, emptyText) {
  const width = 420;
  const height = 150;
  const pad = { l: 44, r: 8, t: 20, b: 22 };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  svg.dataset.metric = label;
  const title = el("text", { x: pad.l, y: 14, class: "chart-title" });
  title.textContent = label;
  svg.append(title);
  const points = rows.filter((r) => r.value !== null && Number.isFinite(r.value));
  if (!points.length) {
    const note = el("text", { x: width / 2, y: height / 2, class: "chart-empty" });
    note.textContent = emptyText;
    svg.append(note);
    return svg;
  }
  const t0 = points[0].ts_ms;
  const t1 = Math.max(points[points.length - 1].ts_ms, t0 + 1);
  let v0 = Math.min(...points.map((p) => p.value));
  let v1 = Math.max(...points.map((p) => p.value));
  if (v0 === v1) {
    v0 -= 1;
    v1 += 1;
  }
  const x = (ts) => pad.l + ((ts - t0) / (t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => height - pad.b - ((v - v0) / (v1 - v0)) * (height - pad.t - pad.b);
  svg.append(
    el("line", { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: "axis" }),
    el("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: "axis" }),
  );
  for (const [v, yy] of [
    [v1, pad.t + 4],
    [v0, height - pad.b],
  ]) {
    const tick = el("text", { x: pad.l - 4, y: yy, class: "tick", "text-anchor": "end" });
    tick.textContent = fmt(v);
    svg.append(tick);
  }
  for (const [ts, anchor] of [
    [t0, "start"],
    [t1, "end"],
  ]) {
    const tick = el("text", { x: x(ts), y: height - 6, class: "tick", "text-anchor": anchor });
    tick.textContent = new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(tick);
  }
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.ts_ms).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  svg.append(el("path", { d, class: "line" }));
  return svg;
}
