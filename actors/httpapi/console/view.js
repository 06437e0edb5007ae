// The page shown (a view: its element, refresh(), wants(type, event) for live events) and its refreshing.

import { h } from "./dom.js";
import { SignedOut, describe } from "./api.js";

// -- views -------------------------------------------------------------------------------------

export let view = null;
let refreshing = false;
let refreshAgain = false;

export async function refreshView() {
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

export function page(title, ...content) {
  const problem = h("p", { class: "message error problem", role: "alert" });
  const element = h("div", {}, h("h1", { id: "page-title" }, title), problem, ...content);
  return {
    element,
    problem(text) {
      if (problem.textContent !== text) problem.textContent = text;
    },
  };
}

export function setView(next) {
  view = next;
}
