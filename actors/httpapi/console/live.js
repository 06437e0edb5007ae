// Live updates: GET /api/v1/events (Server-Sent Events) read with fetch() and a stream reader, because
// EventSource cannot send an Authorization header; parsed here and resumed with Last-Event-ID. Without a
// stream (404, or it broke) the page polls (app.js) and the stream is tried again in the background.

import { $ } from "./dom.js";
import { KEY } from "./api.js";

export const POLL_MS = 2000;
export const STREAM_POLL_EVERY = 15; // with a stream: still refresh every 15th tick (30 s), as a safety net

// open(): the stream (re)started, catch up; event(type, text); refused(message): 401.
const handlers = { open: () => {}, event: () => {}, refused: () => {} };

export function whenLive(given) {
  Object.assign(handlers, given);
}

// epoch: counts the stream's (re)connections; what was kept up to date by events before is not now.
export const live = { mode: "polling", lastId: null, controller: null, retry: 3000, timer: null, epoch: 0 };

export function setLive(mode, why) {
  live.mode = mode;
  const label = $("#live");
  label.classList.toggle("stream", mode === "stream");
  label.textContent = mode === "stream" ? "Live: event stream" : `Live: polling every ${POLL_MS / 1000} s`;
  label.title = why || "";
}

export function stopStream() {
  clearTimeout(live.timer);
  live.timer = null;
  if (live.controller) live.controller.abort();
  live.controller = null;
}

function streamAgainIn(ms) {
  clearTimeout(live.timer);
  live.timer = setTimeout(startStream, ms);
}

export async function startStream() {
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
      handlers.refused("This key was refused: it is unknown or revoked. Enter a valid key.");
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
    handlers.open(); // catch up with what happened while there was no stream
    await readEvents(response.body, handlers.event);
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
