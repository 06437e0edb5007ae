// The stations list: connection state, connector statuses and faults of each.

import { badge, enc, h, show, time } from "./dom.js";
import { SignedOut, api } from "./api.js";
import { POLL_MS, STREAM_POLL_EVERY, live } from "./live.js";
import { page, view } from "./view.js";

const DETAILS_AT_MOST = 100; // stations whose connectors the list shows (one request each)

export function stationsView() {
  const summary = h("p", { class: "muted" });
  const rows = h("tbody");
  const note = h("caption");
  const table = h("div", { class: "table-wrap" }, h("table", { "aria-labelledby": "page-title" }, note,
    h("thead", {}, h("tr", {}, ["Station", "Connection", "Connectors", "Faults", "Vendor and model", "Last seen"]
      .map((name) => h("th", { scope: "col" }, name)))), rows));
  const base = page("Stations", summary, table);
  // Station id -> {key, connectors, at, epoch}: each station's connectors, as last fetched or as
  // connector.status events left them. A station's connectors change only while it is connected (and
  // when it disconnects): with polling, connected stations are fetched again each time; with the
  // stream, events keep them, and a station is fetched again when its connection changed, after a
  // reconnection of the stream (events may be lost in between), or after 30 s.
  const details = new Map();
  let stations = [];

  async function refresh() {
    stations = await api("/api/v1/stations");
    const now = Date.now();
    const stale = stations.slice(0, DETAILS_AT_MOST).filter((s) => {
      const known = details.get(s.id);
      return !known || known.key !== `${s.connected}|${s.disconnected_at}` || (s.connected &&
        (live.mode !== "stream" || known.epoch !== live.epoch || now - known.at > STREAM_POLL_EVERY * POLL_MS));
    });
    await inParallel(stale, 6, async (s) => {
      try {
        const detail = await api(`/api/v1/stations/${enc(s.id)}`);
        details.set(s.id, { key: `${s.connected}|${s.disconnected_at}`, connectors: detail.connectors, at: now,
                            epoch: live.epoch });
      } catch (error) {
        if (error instanceof SignedOut) throw error;
      }
    });
    if (view === result) draw();
  }

  function draw() {
    const connected = stations.filter((s) => s.connected).length;
    summary.textContent = `${connected} of ${stations.length} stations connected.`;
    note.textContent = stations.length > DETAILS_AT_MOST
      ? `Connector statuses are shown for the first ${DETAILS_AT_MOST} stations; open a station for the others.` : "";
    const data = stations.map((s) => ({ ...s, connectorRows: (details.get(s.id) || {}).connectors || null }));
    show(rows, data, (list) => list.length ? list.map(stationRow)
      : h("tr", {}, h("td", { colspan: 6 }, "No stations are registered yet.")));
  }

  // A connector.status event carries the whole new state of its connector: drawn at once, no request.
  function wants(type, event) {
    const known = details.get(event.station);
    if (type !== "connector.status" || !known) return type.startsWith("station.") || type === "connector.status";
    const connector = { connector_id: event.connector, status: event.status, error_code: event.error_code,
                        info: event.info, timestamp: event.at };
    known.connectors = [...known.connectors.filter((c) => c.connector_id !== event.connector), connector]
      .sort((a, b) => a.connector_id - b.connector_id);
    draw();
    return false;
  }

  const result = { ...base, title: "Stations", refresh, wants };
  return result;
}

export function connectionBadge(station) {
  return station.connected ? badge("Connected", "connected") : badge("Disconnected", "disconnected");
}

function connectorBadges(connectors) {
  if (!connectors) return h("span", { class: "muted" }, "—");
  const shown = connectors.filter((c) => c.connector_id > 0 || c.status !== "Available");
  if (!shown.length) return h("span", { class: "muted" }, "none reported");
  return shown.map((c) => badge(`${c.connector_id === 0 ? "Station" : c.connector_id}: ${c.status}`, c.status));
}

function faults(connectors) {
  const found = (connectors || []).filter((c) => (c.error_code && c.error_code !== "NoError") || c.status === "Faulted");
  if (!found.length) return h("span", { class: "muted" }, connectors ? "none" : "—");
  return found.map((c) => h("div", {}, badge(`${c.connector_id}: ${c.error_code || c.status}`, "fault"),
    c.info ? h("span", { class: "muted" }, c.info) : null));
}

function stationRow(s) {
  return h("tr", {},
    h("th", { scope: "row" }, h("a", { href: `#/stations/${enc(s.id)}` }, s.id)),
    h("td", {}, connectionBadge(s), s.registration && s.registration !== "accepted" ? badge(s.registration, "pending") : null),
    h("td", {}, connectorBadges(s.connectorRows)),
    h("td", {}, faults(s.connectorRows)),
    h("td", {}, [s.vendor, s.model].filter(Boolean).join(" ") || "—"),
    h("td", {}, time(s.last_seen)));
}

async function inParallel(items, limit, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
