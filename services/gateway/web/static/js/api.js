// The gateway's JSON API: one fetch wrapper, the CSRF token, and problem+json errors.

const CSRF_KEY = "muniportal.csrf";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `Request failed (${status})`);
    this.status = status;
    this.title = problem.title || "";
    this.detail = problem.detail || "";
    this.code = problem.code || (problem.extra && problem.extra.code) || "";
    this.errors = flattenErrors(problem.errors || {});
    this.problem = problem;
    this.retryAfter = problem.retry_after || null;
  }
}

// `errors` may nest (billing.name) or hold lists; the form shows one message per field.
function flattenErrors(errors, prefix = "") {
  const out = {};
  for (const [key, value] of Object.entries(errors)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(value)) out[name] = value.map(String).join(" ");
    else if (value && typeof value === "object") Object.assign(out, flattenErrors(value, name));
    else out[name] = String(value);
  }
  return out;
}

export function setCsrfToken(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

function csrfToken() {
  return sessionStorage.getItem(CSRF_KEY) || "";
}

async function send(method, path, body, headers) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (UNSAFE.has(method) && csrfToken()) init.headers["X-CSRF-Token"] = csrfToken();
  return fetch(`/api/v1${path}`, init);
}

async function parse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) return response.json();
  const text = await response.text();
  return text ? { detail: text } : null;
}

/** Calls the API; resolves with the JSON body or rejects with an ApiError. */
export async function api(method, path, body, headers = {}) {
  let response;
  try {
    response = await send(method, path, body, headers);
  } catch {
    throw new ApiError(0, {
      title: "No connection",
      detail: "We could not reach the city's servers. Check your connection and try again.",
    });
  }
  // A lost CSRF token (new tab, cleared storage): fetch it again from /me once.
  if (response.status === 403 && UNSAFE.has(method)) {
    const problem = await parse(response.clone()).catch(() => null);
    if (problem && /csrf/i.test(`${problem.code || ""} ${problem.detail || ""} ${problem.type || ""}`)) {
      await refreshCsrf();
      response = await send(method, path, body, headers);
    }
  }
  const data = await parse(response).catch(() => null);
  if (!response.ok) {
    const problem = data || {};
    if (response.status === 429 && !problem.retry_after) {
      problem.retry_after = response.headers.get("Retry-After");
    }
    if (response.status >= 500 && !problem.detail) {
      problem.detail = "This part of the site is unavailable right now. Please try again in a few minutes.";
    }
    throw new ApiError(response.status, problem);
  }
  return data;
}

export async function refreshCsrf() {
  try {
    const me = await api("GET", "/me");
    if (me && me.csrf_token) setCsrfToken(me.csrf_token);
    return me;
  } catch {
    return null;
  }
}

export const get = (path) => api("GET", path);
export const post = (path, body, headers) => api("POST", path, body === undefined ? {} : body, headers);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
