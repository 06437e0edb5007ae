// csms web console: plain JavaScript, no framework, no build step (README, "Web console").
//
// Talks to the HTTP API of the same origin with the operator's key (kept in
// sessionStorage, sent as "Authorization: Bearer KEY"). 401 -> back to the key
// form; 403 -> the key's scope is not enough, said where the operator acted.
//
// Live updates: GET /api/v1/events (Server-Sent Events) read with fetch() and a
// stream reader, because EventSource cannot send an Authorization header; the
// stream is parsed here and resumed with Last-Event-ID. While there is no
// stream (the endpoint answers 404, or the stream broke) the page polls what it
// shows every 2 s, and retries the stream in the background.
"use strict";

(() => {
  const KEY = "csms.apiKey";
  const POLL_MS = 2000;
  const STREAM_POLL_EVERY = 15; // with a stream: still refresh every 15th tick (30 s), as a safety net
  const DETAILS_AT_MOST = 100; // stations whose connectors the list shows (one request each)
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (selector, root = document) => root.querySelector(selector);
  const enc = encodeURIComponent;

  // -- DOM helpers -----------------------------------------------------------------------

  function build(element, props, kids) {
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") element.setAttribute("class", value);
      else if (name === "text") element.textContent = value;
      else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
      else element.setAttribute(name, value === true ? "" : String(value));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid !== null && kid !== undefined && kid !== false) element.append(kid instanceof Node ? kid : String(kid));
    }
    return element;
  }
  const h = (tag, props, ...kids) => build(document.createElement(tag), props, kids);
  const svg = (tag, props, ...kids) => build(document.createElementNS(SVG, tag), props, kids);

  // Replace a container's content only when its data changed: polling every 2 s must not
  // take the keyboard focus away from a button the operator is on, nor cost a re-layout.
  function show(container, data, make) {
    const signature = JSON.stringify(data);
    if (container.dataset.signature === signature) return;
    container.dataset.signature = signature;
    container.replaceChildren(...[make(data)].flat().filter(Boolean));
  }

  function time(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const text = date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
    return h("time", { datetime: date.toISOString() }, text);
  }

  function badge(text, kind) {
    return h("span", { class: `badge s-${kind || text}` }, text);
  }

  function announce(text) {
    $("#announce").textContent = text;
  }

  // -- the API -----------------------------------------------------------------------------

  class SignedOut extends Error {}

  class ApiError extends Error {
    constructor(status, answered) {
      const detail = answered && answered.error ? answered.error.description : "";
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.answered = answered;
    }
  }

  function describe(error, needs) {
    if (!(error instanceof ApiError)) return String(error.message || error);
    switch (error.status) {
      case 0: return "the central system cannot be reached (network error)";
      case 403: return `not allowed: this key's scope is not enough (${error.message}).` +
        (needs ? ` This needs a key of scope ${needs}.` : "");
      case 409: return "the charge point is not connected";
      case 503: return "the central system does not answer (restarting?)";
      case 504: return "no answer from the charge point within the call timeout";
      default: return error.message;
    }
  }

  async function api(path, { method = "GET", body } = {}) {
    const key = sessionStorage.getItem(KEY);
    if (!key) {
      signOut("");
      throw new SignedOut();
    }
    const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, cache: "no-store",
                                     body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, null);
    }
    let answered = null;
    try {
      answered = await response.json();
    } catch {
      answered = null;
    }
    if (response.status === 401) {
      signOut("This key was refused: it is unknown or revoked. Enter a valid key.");
      throw new SignedOut();
    }
    if (!response.ok) throw new ApiError(response.status, answered);
    return answered;
  }

  // -- signing in and out ---------------------------------------------------------------------

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    stopStream();
    live.lastId = null; // the next key starts a stream of its own
    view = null;
    $("#view").hidden = true;
    $("#view").replaceChildren();
    for (const id of ["nav", "live", "forget"]) $("#" + id).hidden = true;
    $("#login").hidden = false;
    const note = $("#key-message");
    note.textContent = message;
    note.className = message ? "message error" : "message";
    $("#key").value = "";
    $("#key").focus();
  }

  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    $("#key-message").textContent = "Checking the key…";
    $("#key-message").className = "message";
    try {
      await api("/api/v1/status");
    } catch (error) {
      if (!(error instanceof SignedOut)) {
        $("#key-message").textContent = "The key could not be checked: " + describe(error);
        $("#key-message").className = "message error";
      }
      return;
    }
    $("#key-message").textContent = "";
    showApp();
  }

  function showApp() {
    $("#login").hidden = true;
    for (const id of ["nav", "live", "forget", "view"]) $("#" + id).hidden = false;
    setLive("polling", "");
    startStream();
    render();
  }

  // -- live updates: the event stream, and polling without it -----------------------------------

  // epoch: counts the stream's (re)connections; what was kept up to date by events before is not now.
  const live = { mode: "polling", lastId: null, controller: null, retry: 3000, timer: null, epoch: 0 };

  function setLive(mode, why) {
    live.mode = mode;
    const label = $("#live");
    label.classList.toggle("stream", mode === "stream");
    label.textContent = mode === "stream" ? "Live: event stream" : `Live: polling every ${POLL_MS / 1000} s`;
    label.title = why || "";
  }

  function stopStream() {
    clearTimeout(live.timer);
    live.timer = null;
    if (live.controller) live.controller.abort();
    live.controller = null;
  }

  function streamAgainIn(ms) {
    clearTimeout(live.timer);
    live.timer = setTimeout(startStream, ms);
  }

  async function startStream() {
    const key = sessionStorage.getItem(KEY);
    if (!key) return;
    const controller = new AbortController();
    live.controller = controller;
    const headers = { Authorization: `Bearer ${key}`, Accept: "text/event-stream" };
    if (live.lastId !== null) headers["Last-Event-ID"] = live.lastId;
    try {
      const response = await fetch("/api/v1/events", { headers, signal: controller.signal, cache: "no-store" });
      const type = response.headers.get("Content-Type") || "";
      if (response.status === 401) {
        signOut("This key was refused: it is unknown or revoked. Enter a valid key.");
        return;
      }
      if (!response.ok || !response.body || !type.startsWith("text/event-stream")) {
        controller.abort();
        setLive("polling", `no event stream (HTTP ${response.status})`);
        streamAgainIn(response.status === 404 ? 60000 : nextRetry());
        return;
      }
      live.epoch += 1;
      setLive("stream", "");
      live.retry = 3000;
      refreshView(); // catch up with what happened while there was no stream
      await readEvents(response.body, onEvent);
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    if (live.controller !== controller) return; // signed out meanwhile
    setLive("polling", "the event stream ended; reconnecting");
    streamAgainIn(nextRetry());
  }

  function nextRetry() {
    const wait = live.retry;
    live.retry = Math.min(live.retry * 2, 30000);
    return wait;
  }

  // Server-Sent Events, parsed as the HTML standard says: lines end in CRLF, LF or CR; a blank line
  // dispatches; "id" sets the last event id (kept for Last-Event-ID), "retry" the reconnection time.
  async function readEvents(body, dispatch) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    let type = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      let text = buffer + value;
      let keep = "";
      if (text.endsWith("\r")) { // maybe the first half of a CRLF
        keep = "\r";
        text = text.slice(0, -1);
      }
      const lines = text.split(/\r\n|\r|\n/);
      buffer = lines.pop() + keep;
      for (const line of lines) {
        if (line === "") {
          if (data.length) dispatch(type || "message", data.join("\n"));
          data = [];
          type = "";
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let fieldValue = colon < 0 ? "" : line.slice(colon + 1);
        if (fieldValue.startsWith(" ")) fieldValue = fieldValue.slice(1);
        if (field === "data") data.push(fieldValue);
        else if (field === "event") type = fieldValue;
        else if (field === "id" && !fieldValue.includes("\0")) live.lastId = fieldValue;
        else if (field === "retry" && /^\d+$/.test(fieldValue)) live.retry = Number(fieldValue);
      }
    }
  }

  let eventTimer = null;

  function onEvent(type, text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    if (type === "station.connected") announce(`${event.station} connected`);
    if (type === "station.disconnected") announce(`${event.station} disconnected`);
    if (view && view.wants(type, event)) {
      clearTimeout(eventTimer); // a burst of events is one refresh
      eventTimer = setTimeout(refreshView, 150);
    }
  }

  let ticks = 0;
  setInterval(() => {
    ticks += 1;
    if (!view || document.hidden) return;
    if (live.mode !== "stream" || view.pollAlways || ticks % STREAM_POLL_EVERY === 0) refreshView();
  }, POLL_MS);

  // -- views -------------------------------------------------------------------------------------

  let view = null;
  let refreshing = false;
  let refreshAgain = false;

  async function refreshView() {
    const current = view;
    if (!current) return;
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      await current.refresh();
      if (current === view) current.problem("");
    } catch (error) {
      if (!(error instanceof SignedOut) && current === view) current.problem(describe(error, "read"));
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        refreshView();
      }
    }
  }

  function page(title, ...content) {
    const problem = h("p", { class: "message error problem", role: "alert" });
    const element = h("div", {}, h("h1", { id: "page-title" }, title), problem, ...content);
    return {
      element,
      problem(text) {
        if (problem.textContent !== text) problem.textContent = text;
      },
    };
  }

  function route() {
    const [path, query] = (location.hash.replace(/^#\/?/, "") || "stations").split("?");
    const parts = path.split("/").map(decodeURIComponent);
    return { parts, query: new URLSearchParams(query || "") };
  }

  function render() {
    if (!sessionStorage.getItem(KEY)) return;
    const { parts, query } = route();
    const make = parts[0] === "stations" && parts[1] ? () => stationView(parts[1])
      : parts[0] === "transactions" ? () => transactionsView(query)
        : parts[0] === "pending" ? pendingView
          : stationsView;
    view = make();
    const section = parts[0] === "stations" && parts[1] ? "stations" : parts[0] || "stations";
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.page === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    $("#view").replaceChildren(view.element);
    document.title = `${view.title} · csms console`;
    refreshView();
  }

  // The stations list: connection state, connector statuses and faults of each.
  function stationsView() {
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

  function connectionBadge(station) {
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

  // One station: connectors, the active transaction and its meter values, the limit in force, its log, commands.
  function stationView(id) {
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
        h("section", { class: "card", "aria-labelledby": "connectors-title" }, h("h2", { id: "connectors-title" }, "Connectors"),
          h("table", { "aria-labelledby": "connectors-title" }, h("thead", {}, h("tr", {},
            ["Connector", "Status", "Error code", "Info", "Since"].map((name) => h("th", { scope: "col" }, name)))), connectors)),
        h("section", { class: "card", "aria-labelledby": "limit-title" }, h("h2", { id: "limit-title" }, "Charging limit"), limits)),
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

  function quiet(error) {
    if (error instanceof SignedOut) throw error;
    return null;
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

  function transactionCard(tx, withMeters) {
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

  // The command forms; every one goes through POST /api/v1/stations/{id}/calls/{Action}.
  function commandsCard(id) {
    const answer = h("p", { class: "answer", id: "answer", role: "status", "aria-live": "polite" });
    const field = (label, control) => h("div", { class: "field" }, h("label", { for: control.id }, label), control);
    const number = (name, props) => h("input", { id: name, name, type: "number", inputmode: "numeric", ...props });
    const choice = (name, options) => h("select", { id: name, name }, options.map((o) => h("option", { value: o }, o)));

    function form(action, title, button, fields, payload) {
      const titleId = `cmd-${action}`;
      const element = h("form", { "aria-labelledby": titleId },
        h("h3", { id: titleId }, title), fields, h("button", { type: "submit" }, button));
      element.addEventListener("submit", (event) => {
        event.preventDefault();
        send(action, payload(element), element);
      });
      return element;
    }

    const int = (element, name) => {
      const text = element.elements[name].value.trim();
      return text === "" ? undefined : Number(text);
    };

    async function send(action, payload, element) {
      if (element.dataset.busy) return;
      const button = element.querySelector("button");
      element.dataset.busy = "1";
      button.setAttribute("aria-disabled", "true");
      answer.className = "answer";
      answer.textContent = `${action}: sent, waiting for the charge point…`;
      try {
        const answered = await api(`/api/v1/stations/${enc(id)}/calls/${action}`, { method: "POST", body: payload });
        if (answered.error) {
          answer.className = "answer error";
          answer.textContent = `${action}: the charge point answered with an error: ${answered.error.code}` +
            (answered.error.description ? ` (${answered.error.description})` : "");
        } else {
          const response = answered.response || {};
          const status = response.status;
          answer.className = status === "Rejected" || status === "UnlockFailed" ? "answer error" : "answer ok";
          answer.textContent = `${action}: the charge point answered ${status || JSON.stringify(response)}`;
        }
      } catch (error) {
        if (error instanceof SignedOut) return;
        answer.className = "answer error";
        answer.textContent = `${action}: ${describe(error, "operate")}`;
      } finally {
        delete element.dataset.busy;
        button.removeAttribute("aria-disabled");
      }
      refreshView();
    }

    const stopId = number("stop-tx", { min: 1, required: true });
    const forms = [
      form("Reset", "Reset", "Reset", field("Reset type", choice("reset-type", ["Soft", "Hard"])),
        (f) => ({ type: f.elements["reset-type"].value })),
      form("UnlockConnector", "Unlock connector", "Unlock connector",
        field("Connector to unlock", number("unlock-connector", { min: 1, value: 1, required: true })),
        (f) => ({ connectorId: int(f, "unlock-connector") })),
      form("RemoteStartTransaction", "Remote start", "Start transaction", [
        field("idTag", h("input", { id: "start-tag", name: "start-tag", type: "text", maxlength: 20, required: true,
                                    autocomplete: "off" })),
        field("Connector (optional)", number("start-connector", { min: 1 })),
      ], (f) => {
        const payload = { idTag: f.elements["start-tag"].value.trim() };
        const connector = int(f, "start-connector");
        if (connector !== undefined) payload.connectorId = connector;
        return payload;
      }),
      form("RemoteStopTransaction", "Remote stop", "Stop transaction", field("Transaction id", stopId),
        (f) => ({ transactionId: int(f, "stop-tx") })),
      form("ChangeAvailability", "Change availability", "Change availability", [
        field("Connector (0: the whole station)", number("availability-connector", { min: 0, value: 0, required: true })),
        field("Availability", choice("availability-type", ["Inoperative", "Operative"])),
      ], (f) => ({ connectorId: int(f, "availability-connector"), type: f.elements["availability-type"].value })),
    ];
    const element = h("section", { class: "card commands", "aria-labelledby": "commands-title" },
      h("h2", { id: "commands-title" }, "Commands"),
      h("p", { class: "muted" }, "Sent to the charge point as OCPP requests; they need a key of scope operate."),
      forms, answer);
    let suggested = "";
    return {
      element,
      // Offer the active transaction for Remote stop, unless the operator typed something else.
      suggest(tx) {
        const value = tx ? String(tx.id) : "";
        if (document.activeElement !== stopId && stopId.value === suggested) stopId.value = value;
        suggested = value;
      },
    };
  }

  // Transactions, filtered by station (on the server), tag and start date (here), newest first.
  function transactionsView(query) {
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

  // Identities that knocked while unknown (--unknown-stations pending), to approve (admin keys).
  function pendingView() {
    const rows = h("tbody");
    const message = h("p", { class: "answer", role: "status", "aria-live": "polite" });
    const base = page("Pending stations",
      h("p", { class: "muted" }, "Charge points that tried to connect while unknown (with --unknown-stations pending). " +
        "Approving one registers it; that needs a key of scope admin."),
      message,
      h("div", { class: "table-wrap" }, h("table", { "aria-labelledby": "page-title" },
        h("thead", {}, h("tr", {}, ["Station", "Address", "Attempts", "First seen", "Last seen", "Action"]
          .map((name) => h("th", { scope: "col" }, name)))), rows)));

    async function approve(id) {
      message.className = "answer";
      message.textContent = `Approving ${id}…`;
      try {
        await api(`/api/v1/pending-stations/${enc(id)}/approve`, { method: "POST" });
        message.className = "answer ok";
        message.textContent = `${id} is registered; it is accepted when it connects again.`;
      } catch (error) {
        if (error instanceof SignedOut) return;
        message.className = "answer error";
        message.textContent = `Approving ${id}: ${describe(error, "admin")}`;
      }
      refreshView();
    }

    async function refresh() {
      const pending = await api("/api/v1/pending-stations");
      if (view !== result) return;
      show(rows, pending, (list) => list.length ? list.map((p) => h("tr", {},
        h("th", { scope: "row" }, p.id), h("td", {}, p.address || "—"), h("td", { class: "num" }, String(p.attempts)),
        h("td", {}, time(p.first_seen)), h("td", {}, time(p.last_seen)),
        h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Approve ${p.id}`,
                                  onclick: () => approve(p.id) }, "Approve"))))
        : h("tr", {}, h("td", { colspan: 6 }, "No station is waiting for approval.")));
    }

    // Knocks of unknown identities are not events: poll this page even with a stream.
    const result = { ...base, title: "Pending stations", refresh, wants: () => false, pollAlways: true };
    return result;
  }

  // -- start ---------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("#key").value.trim();
      if (key) signIn(key);
    });
    $("#forget").addEventListener("click", () => signOut("The key is forgotten in this tab."));
    window.addEventListener("hashchange", () => {
      render();
      $("#main").focus();
    });
    if (sessionStorage.getItem(KEY)) showApp();
    else signOut("");
  });
})();
