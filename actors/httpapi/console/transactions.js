// Transactions, filtered by station (on the server), tag and start date (here), newest first.

import { badge, enc, h, show, time } from "./dom.js";
import { api, quiet } from "./api.js";
import { page, refreshView, view } from "./view.js";

export function transactionsView(query) {
  const input = (name, label, props) => h("div", { class: "field" }, h("label", { for: `f-${name}` }, label),
    h("input", { id: `f-${name}`, name, value: query.get(name) || "", ...props }));
  const stationsList = h("datalist", { id: "station-ids" });
  const filters = h("form", { class: "filters card", role: "search", "aria-label": "Filter transactions" },
    input("station", "Station", { type: "text", list: "station-ids", autocomplete: "off" }), stationsList,
    input("tag", "idTag", { type: "text", autocomplete: "off" }),
    input("from", "Started from (UTC date)", { type: "date" }),
    input("to", "Started until (UTC date)", { type: "date" }),
    h("div", { class: "field check" }, h("input", { id: "f-active", name: "active", type: "checkbox",
                                                     checked: query.get("active") === "1" }),
      " ", h("label", { for: "f-active" }, "Active only")),
    h("button", { type: "submit" }, "Apply filters"),
    h("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/transactions"; } }, "Clear filters"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const name of ["station", "tag", "from", "to"]) {
      const value = filters.elements[name].value.trim();
      if (value) chosen.set(name, value);
    }
    if (filters.elements.active.checked) chosen.set("active", "1");
    const hash = "#/transactions" + (chosen.toString() ? "?" + chosen : "");
    if (location.hash === hash) refreshView();
    else location.hash = hash;
  });
  const summary = h("caption");
  const rows = h("tbody");
  const base = page("Transactions", filters, h("div", { class: "table-wrap" }, h("table", { "aria-labelledby": "page-title" },
    summary, h("thead", {}, h("tr", {}, ["Id", "Station", "Connector", "idTag", "Started", "Stopped", "Energy", "Stop reason"]
      .map((name) => h("th", { scope: "col", class: name === "Energy" || name === "Id" ? "num" : null }, name)))), rows)));

  async function refresh() {
    const server = new URLSearchParams();
    if (query.get("station")) server.set("station", query.get("station"));
    if (query.get("active") === "1") server.set("active", "true");
    const [all, stations] = await Promise.all([
      api("/api/v1/transactions" + (server.toString() ? "?" + server : "")),
      stationsList.childElementCount ? null : api("/api/v1/stations").catch(quiet),
    ]);
    if (view !== result) return;
    if (stations) stationsList.replaceChildren(...stations.map((s) => h("option", { value: s.id })));
    const tag = (query.get("tag") || "").toLowerCase();
    const from = query.get("from"), to = query.get("to");
    const day = (iso) => (iso ? new Date(iso).toISOString().slice(0, 10) : "");
    const found = all.filter((tx) => (!tag || (tx.id_tag || "").toLowerCase().includes(tag))
      && (!from || day(tx.started_at) >= from) && (!to || day(tx.started_at) <= to));
    summary.textContent = `${found.length} transaction${found.length === 1 ? "" : "s"}, newest first` +
      (all.length >= 1000 ? " (among the newest 1000 the API returns)" : "") + ".";
    show(rows, found, (list) => list.length ? list.map((tx) => h("tr", {},
      h("td", { class: "num" }, String(tx.id)),
      h("td", {}, h("a", { href: `#/stations/${enc(tx.station_id)}` }, tx.station_id)),
      h("td", {}, String(tx.connector_id)), h("td", {}, tx.id_tag || "—"),
      h("td", {}, time(tx.started_at)), h("td", {}, tx.stopped_at ? time(tx.stopped_at) : badge("Active", "Charging")),
      h("td", { class: "num" }, tx.energy_wh === null || tx.energy_wh === undefined ? "—" : `${(tx.energy_wh / 1000).toFixed(3)} kWh`),
      h("td", {}, tx.stop_reason || "—")))
      : h("tr", {}, h("td", { colspan: 8 }, "No transaction matches.")));
  }

  const result = { ...base, title: "Transactions", refresh, wants: (type) => type.startsWith("transaction.") };
  return result;
}
