// The command forms of a station page.

import { enc, h } from "./dom.js";
import { SignedOut, api, describe } from "./api.js";
import { refreshView } from "./view.js";

// Every one goes through POST /api/v1/stations/{id}/calls/{Action} and shows what the charge point answered.
export function commandsCard(id) {
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

