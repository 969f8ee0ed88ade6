// Small DOM helpers shared by the page's modules.

/** A new element with an optional class and text. */
export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A rate 0..1 as a whole percentage, or a dash. */
export function pct(v) {
  return v == null ? "—" : `${(v * 100).toFixed(0)}%`;
}
