// The HTTP API of the same origin, with the operator's key (sessionStorage, "Authorization: Bearer KEY").
// 401: the key is dropped and whenRefused's function called (the key form); other failures are ApiErrors.

export const KEY = "csms.apiKey";

let refused = () => {};

/** What to do when the key is refused (401) or missing: fn(message). */
export function whenRefused(fn) {
  refused = fn;
}

// -- the API -----------------------------------------------------------------------------

export class SignedOut extends Error {}

export class ApiError extends Error {
  constructor(status, answered) {
    const detail = answered && answered.error ? answered.error.description : "";
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.answered = answered;
  }
}

export function describe(error, needs) {
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

export async function api(path, { method = "GET", body } = {}) {
  const key = sessionStorage.getItem(KEY);
  if (!key) {
    refused("");
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
    refused("This key was refused: it is unknown or revoked. Enter a valid key.");
    throw new SignedOut();
  }
  if (!response.ok) throw new ApiError(response.status, answered);
  return answered;
}

// A request whose failure leaves a section empty (null); a refused key still ends everything.
export function quiet(error) {
  if (error instanceof SignedOut) throw error;
  return null;
}

