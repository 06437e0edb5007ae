// The active transaction: its facts and its energy over time, drawn as inline SVG (no library).

import { h, svg, time } from "./dom.js";

export function transactionCard(tx, withMeters) {
  const points = energyPoints(tx, withMeters ? withMeters.meter_values : []);
  const latest = points.length ? points[points.length - 1] : null;
  return h("div", {},
    h("dl", { class: "facts" },
      h("dt", {}, "Transaction"), h("dd", {}, String(tx.id)),
      h("dt", {}, "Connector"), h("dd", {}, String(tx.connector_id)),
      h("dt", {}, "idTag"), h("dd", {}, tx.id_tag || "—"),
      h("dt", {}, "Started"), h("dd", {}, time(tx.start_timestamp || tx.started_at)),
      h("dt", {}, "Energy so far"), h("dd", {}, latest ? `${(latest.wh / 1000).toFixed(3)} kWh` : "—")),
    h("div", { class: "chart" }, points.length > 1 ? chart(tx, points) : h("p", { class: "muted" }, "No meter values yet.")));
}

// Energy delivered since the start (Wh) over time, from the start meter and each Energy.Active.Import.Register sample.
function energyPoints(tx, meterValues) {
  const points = [];
  for (const meter of meterValues || []) {
    const t = Date.parse(meter.timestamp);
    const samples = Array.isArray(meter.sampled_value) ? meter.sampled_value : [];
    const energy = samples.find((v) => (v.measurand || "Energy.Active.Import.Register") === "Energy.Active.Import.Register"
      && (!v.phase) && (v.context || "Sample.Periodic") !== "Transaction.Begin");
    if (!energy || Number.isNaN(t)) continue;
    const value = Number(energy.value) * (energy.unit === "kWh" ? 1000 : 1);
    if (Number.isFinite(value)) points.push({ t, wh: Math.max(0, value - (tx.meter_start || 0)) });
  }
  points.sort((a, b) => a.t - b.t);
  // The start meter, at the charge point's start time (never after its first reading: clocks differ).
  const start = Date.parse(tx.start_timestamp || tx.started_at);
  if (!Number.isNaN(start)) points.unshift({ t: points.length ? Math.min(start, points[0].t) : start, wh: 0 });
  return points;
}

function chart(tx, points) {
  const width = 640, height = 220, left = 56, right = 16, top = 14, bottom = 34;
  const t0 = points[0].t, t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const top_kwh = Math.max(...points.map((p) => p.wh)) / 1000 || 1;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (wh) => height - bottom - (wh / 1000 / top_kwh) * (height - top - bottom);
  const clock = (t) => new Date(t).toISOString().slice(11, 19);
  const ticks = [0, 0.5, 1].map((f) => f * top_kwh);
  const titleId = `chart-title-${tx.id}`, descId = `chart-desc-${tx.id}`;
  const last = points[points.length - 1];
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${titleId} ${descId}` },
    svg("title", { id: titleId }, `Energy delivered in transaction ${tx.id}`),
    svg("desc", { id: descId }, `${points.length} readings from ${clock(t0)} to ${clock(t1)} UTC; ` +
      `now ${(last.wh / 1000).toFixed(3)} kWh.`),
    ticks.map((kwh) => [
      svg("line", { class: "grid-line", x1: left, x2: width - right, y1: y(kwh * 1000), y2: y(kwh * 1000) }),
      svg("text", { x: left - 6, y: y(kwh * 1000) + 4, "text-anchor": "end" }, `${kwh.toFixed(kwh < 10 ? 2 : 0)} kWh`),
    ]),
    svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: height - bottom }),
    svg("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
    svg("text", { x: left, y: height - 12, "text-anchor": "start" }, clock(t0)),
    svg("text", { x: width - right, y: height - 12, "text-anchor": "end" }, `${clock(t1)} UTC`),
    svg("polyline", { class: "line", points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.wh).toFixed(1)}`).join(" ") }),
    points.map((p) => svg("circle", { class: "dot", cx: x(p.t).toFixed(1), cy: y(p.wh).toFixed(1), r: 3 })));
}

