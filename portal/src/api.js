// The order API and openEO API client. The access token lives in this module's memory only: never in
// localStorage or a cookie, so a reload signs out and a script injected elsewhere cannot read it from storage.

let base = "";
let token = null;

export function configure(apiRoot) {
  base = (apiRoot || "").replace(/\/$/, "");
}

export function signedIn() {
  return token !== null;
}

export function signOut() {
  token = null;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error_description)) || `The request failed (HTTP ${status}).`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function request(method, path, { json, form, openeo = false, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = openeo ? `Bearer basic//${token}` : `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.headers["Content-Type"] = "application/x-www-form-urlencoded";
    init.body = new URLSearchParams(form).toString();
  }
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return { body, headers: response.headers, status: response.status };
}

export const orders = (method, path, options) => request(method, `/api/v1${path}`, options).then((r) => r.body);
export const openeo = (method, path, options) => request(method, `/openeo/1.2${path}`, { ...options, openeo: true });

export async function signIn(email, password) {
  const answer = await orders("POST", "/auth/token", { form: { grant_type: "password", username: email, password } });
  token = answer.access_token;
  return orders("GET", "/auth/me");
}
