// Line charts as plain SVG: one small chart per numeric field, time on x over a fixed window,
// the value range on y with its min and max written at the side. No library, no canvas.

const svgNs = 'http://www.w3.org/2000/svg';
const width = 300;
const height = 70;
const margin = 2;

/** Short number for the axis and the last value. */
export function formatNumber(value) {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1) + 'M';
  if (Math.abs(value) >= 1e4) return (value / 1e3).toFixed(1) + 'k';
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function element(name, attributes) {
  const node = document.createElementNS(svgNs, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

/**
 * Draws (or redraws) one chart into `holder`, a div the caller keeps per series.
 * points: [{ t: ms, v: number }] in time order.
 */
export function drawChart(holder, title, unit, points, nowMs, windowMs) {
  holder.className = 'chart';
  holder.replaceChildren();
  const head = document.createElement('div');
  head.className = 'title';
  const name = document.createElement('span');
  name.textContent = title + (unit ? ` (${unit})` : '');
  const last = document.createElement('span');
  last.className = 'value';
  last.textContent = points.length > 0 ? formatNumber(points[points.length - 1].v) : '-';
  head.append(name, last);
  holder.append(head);

  const svg = element('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  // The x axis spans the data: a young series is not squeezed into the right edge of the window.
  const oldest = points.find((point) => point.t >= nowMs - windowMs);
  const span = oldest === undefined ? windowMs : Math.min(windowMs, Math.max(60_000, nowMs - oldest.t + 5_000));
  const from = nowMs - span;
  windowMs = span;
  const visible = points.filter((point) => point.t >= from);
  if (visible.length > 0) {
    let min = Infinity;
    let max = -Infinity;
    for (const point of visible) {
      if (point.v < min) min = point.v;
      if (point.v > max) max = point.v;
    }
    // A flat series still gets a visible band around its value.
    if (min === max) {
      min -= 1;
      max += 1;
    }
    const x = (t) => margin + ((t - from) / windowMs) * (width - 2 * margin);
    const y = (v) => height - margin - 10 - ((v - min) / (max - min)) * (height - 2 * margin - 14);
    const coordinates = visible.map((point) => `${x(point.t).toFixed(1)},${y(point.v).toFixed(1)}`).join(' ');
    svg.append(element('polyline', { points: coordinates }));
    if (visible.length === 1) svg.append(element('circle', { cx: x(visible[0].t), cy: y(visible[0].v), r: 2, fill: '#2857c5' }));
    const top = element('text', { x: width - margin, y: 10, 'text-anchor': 'end' });
    top.textContent = formatNumber(max);
    const bottom = element('text', { x: width - margin, y: height - 2, 'text-anchor': 'end' });
    bottom.textContent = formatNumber(min);
    svg.append(top, bottom);
  }
  holder.append(svg);
  holder.dataset.points = String(visible.length);
}
