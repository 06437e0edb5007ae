// Identities that knocked while unknown (--unknown-stations pending), to approve (admin keys).

import { enc, h, show, time } from "./dom.js";
import { SignedOut, api, describe } from "./api.js";
import { page, refreshView, view } from "./view.js";

export function pendingView() {
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
