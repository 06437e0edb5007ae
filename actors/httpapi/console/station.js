// One station: connectors, the active transaction and its meter values, the limit in force, its log, commands.

import { badge, enc, h, show, time } from "./dom.js";
import { ApiError, api, quiet } from "./api.js";
import { page, view } from "./view.js";
import { connectionBadge } from "./stations.js";
import { transactionCard } from "./chart.js";
import { commandsCard } from "./commands.js";

export function stationView(id) {
  const state = h("span", { id: "connection" });
  const facts = h("dl", { class: "facts" });
  const connectors = h("tbody");
  const limits = h("div");
  const transactions = h("div");
  const logBody = h("div");
  const logSection = h("section", { class: "card", "aria-labelledby": "log-title", hidden: true },
    h("h2", { id: "log-title" }, "Recent frames and security events"), logBody);
  const events = h("div");
  const commands = commandsCard(id);
  const base = page(`Station ${id}`,
    h("p", {}, h("a", { href: "#/stations" }, "All stations")),
    h("p", {}, state),
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "overview-title" }, h("h2", { id: "overview-title" }, "Overview"), facts),
      h("section", { class: "card", "aria-labelledby": "limit-title" }, h("h2", { id: "limit-title" }, "Charging limit"), limits)),
    h("section", { class: "card", "aria-labelledby": "connectors-title" }, h("h2", { id: "connectors-title" }, "Connectors"),
      h("table", { "aria-labelledby": "connectors-title" }, h("thead", {}, h("tr", {},
        ["Connector", "Status", "Error code", "Info", "Since"].map((name) => h("th", { scope: "col" }, name)))), connectors)),
    h("section", { class: "card", "aria-labelledby": "tx-title" }, h("h2", { id: "tx-title" }, "Active transaction"), transactions),
    commands.element,
    logSection,
    h("section", { class: "card", "aria-labelledby": "events-title" }, h("h2", { id: "events-title" }, "Firmware and diagnostics events"), events));
  let logOffered = true;

  async function refresh() {
    let detail;
    try {
      detail = await api(`/api/v1/stations/${enc(id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) throw new Error(`There is no station ${id}.`);
      throw error;
    }
    const [profiles, log, meters] = await Promise.all([
      api(`/api/v1/stations/${enc(id)}/profiles`).catch(quiet),
      logOffered ? api(`/api/v1/stations/${enc(id)}/log`).catch((error) => {
        if (error instanceof ApiError && (error.status === 404 || error.status === 405)) logOffered = false;
        return quiet(error);
      }) : null,
      Promise.all(detail.active_transactions.slice(0, 4).map((tx) =>
        api(`/api/v1/transactions/${tx.id}`).catch(quiet))),
    ]);
    if (view !== result) return;
    const station = detail.station;
    show(state, [station.connected, station.registration], () => [connectionBadge(station),
      station.registration && station.registration !== "accepted" ? badge(`registration ${station.registration}`, "pending") : null]);
    show(facts, station, (s) => [
      ["Registration", s.registration], ["Vendor", s.vendor], ["Model", s.model], ["Serial", s.charge_box_serial || s.serial],
      ["Firmware", s.firmware_version], ["Connected since", s.connected ? time(s.connected_at) : null],
      ["Disconnected at", s.connected ? null : time(s.disconnected_at)], ["Last seen", time(s.last_seen)],
      ["Last boot", time(s.last_boot_at)],
    ].filter(([, value]) => value).flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
    show(connectors, detail.connectors, (list) => list.length ? list.map((c) => h("tr", {},
      h("th", { scope: "row" }, c.connector_id === 0 ? "0 (station)" : String(c.connector_id)),
      h("td", {}, badge(c.status)), h("td", {}, c.error_code || "—"), h("td", {}, c.info || "—"),
      h("td", {}, time(c.timestamp || c.updated_at))))
      : h("tr", {}, h("td", { colspan: 5 }, "No StatusNotification yet.")));
    show(limits, profiles, limitTable);
    show(transactions, [detail.active_transactions, meters], ([active, withMeters]) => active.length
      ? active.map((tx, i) => transactionCard(tx, withMeters[i]))
      : h("p", { class: "muted" }, "No transaction is active."));
    commands.suggest(detail.active_transactions[0]);
    logSection.hidden = !(log && typeof log === "object");
    if (!logSection.hidden) show(logBody, log, genericTable);
    show(events, detail.events || [], (list) => list.length ? genericTable(list.map((e) => ({
      at: e.at, kind: e.kind, status: e.status, detail: e.detail }))) : h("p", { class: "muted" }, "None."));
  }

  const result = { ...base, title: `Station ${id}`, refresh, wants: (type, event) => event.station === id };
  return result;
}


function limitTable(profiles) {
  if (!profiles) return h("p", { class: "muted" }, "Not available.");
  const rows = profiles.filter((p) => p.connector_id > 0 || p.profiles.length || p.limit_now_a !== null);
  return h("table", { "aria-labelledby": "limit-title" },
    h("thead", {}, h("tr", {}, ["Connector", "Limit now", "Profiles"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.map((p) => h("tr", {},
      h("th", { scope: "row" }, p.connector_id === 0 ? "0 (station)" : String(p.connector_id)),
      h("td", { class: "num" }, p.limit_now_a === null || p.limit_now_a === undefined ? "no limit" : `${p.limit_now_a} A`),
      h("td", { class: "num" }, String(p.profiles.length))))));
}

// Rows of any shape (the station log is another engineer's endpoint): a table of their fields.
function genericTable(value) {
  if (Array.isArray(value)) {
    if (!value.length) return h("p", { class: "muted" }, "None.");
    const rows = value.slice(0, 50);
    const columns = [...new Set(rows.flatMap((row) => (row && typeof row === "object" ? Object.keys(row) : ["value"])))];
    return h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((name) => {
        const cell = row && typeof row === "object" ? row[name] : row;
        return h("td", { class: typeof cell === "object" && cell !== null ? "mono" : null },
          cell === null || cell === undefined ? "" : typeof cell === "object" ? JSON.stringify(cell) : String(cell));
      }))))));
  }
  if (value && typeof value === "object") {
    return Object.entries(value).map(([name, part]) => h("div", {}, h("h3", {}, name.replace(/_/g, " ")), genericTable(part)));
  }
  return h("p", {}, String(value));
}

