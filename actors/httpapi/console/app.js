// csms web console: plain JavaScript, no framework, no build step (README, "Web console").
//
// Talks to the HTTP API of the same origin with the operator's key (kept in
// sessionStorage, sent as "Authorization: Bearer KEY"). 401 -> back to the key
// form; 403 -> the key's scope is not enough, said where the operator acted.
//
// Live updates (live.js): GET /api/v1/events (Server-Sent Events) read with fetch()
// and a stream reader, because EventSource cannot send an Authorization header,
// resumed with Last-Event-ID. While there is no stream (the endpoint answers
// 404, or the stream broke) the page polls what it shows every 2 s, and the
// stream is tried again in the background.
//
// ES modules, loaded as they are (no bundler). This one signs in and out, routes (#/stations, #/stations/ID, #/transactions, #/pending), polls, and
// hands live events to the page shown; each page is a module of its own.

import { $, announce } from "./dom.js";
import { KEY, SignedOut, api, describe, whenRefused } from "./api.js";
import { POLL_MS, STREAM_POLL_EVERY, live, setLive, startStream, stopStream, whenLive } from "./live.js";
import { refreshView, setView, view } from "./view.js";
import { stationsView } from "./stations.js";
import { stationView } from "./station.js";
import { transactionsView } from "./transactions.js";
import { pendingView } from "./pending.js";

// -- signing in and out ---------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(KEY);
  stopStream();
  live.lastId = null; // the next key starts a stream of its own
  setView(null);
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
  setView(make());
  const section = parts[0] === "stations" && parts[1] ? "stations" : parts[0] || "stations";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("#view").replaceChildren(view.element);
  document.title = `${view.title} · csms console`;
  refreshView();
}

// -- start ---------------------------------------------------------------------------------------

whenRefused(signOut);
whenLive({ open: refreshView, event: onEvent, refused: signOut });

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
