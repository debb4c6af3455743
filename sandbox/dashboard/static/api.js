// The control API client of the dashboard: JSON over fetch, with the control token (when the
// server has one) sent as a bearer token on every call.

const TOKEN_KEY = "import-sandbox.control-token";

export class ApiError extends Error {
  constructor(status, envelope, fallback) {
    super((envelope && envelope.message) || fallback);
    this.status = status;
    this.envelope = envelope || {};
  }
}

export const auth = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  onUnauthorized: (_message) => {},

  /** Kept for this tab only: sessionStorage, never a cookie or the URL. */
  remember(token) {
    this.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
  },
};

let base = "";

export function setBase(apiBase) {
  base = apiBase;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (auth.token) headers.Authorization = "Bearer " + auth.token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(base + path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const err = new ApiError(response.status, data && data.error,
      `${method} ${path}: HTTP ${response.status}`);
    if (response.status === 401) auth.onUnauthorized(err.message);
    throw err;
  }
  return data;
}
