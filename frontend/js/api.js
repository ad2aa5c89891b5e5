// HTTP client for the backend: JSON calls with the bearer token, one refresh-and-retry on 401,
// uploads with progress (XMLHttpRequest), and authenticated blob downloads for artifacts.

import { auth } from "./auth.js";

export const BACKEND_URL = ((window.APP_CONFIG && window.APP_CONFIG.backendUrl) || "").replace(/\/+$/, "");

/** An HTTP error with the server's message; `kind` lets the UI choose what to say and do. */
export class ApiError extends Error {
  constructor(status, message, detail = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }

  get kind() {
    if (this.status === 0) return "network";
    if (this.status === 401) return "auth";
    if (this.status === 413) return "too_large";
    if (this.status === 415) return "unsupported";
    if (this.status === 429) return "rate_limited";
    if (this.status === 503) return "unavailable";
    return "http";
  }
}

/** Thrown when the session cannot be renewed: the app goes back to the sign-in screen. */
export class SessionExpired extends ApiError {
  constructor() {
    super(401, "Your session has expired. Please sign in again.");
    this.name = "SessionExpired";
  }
}

export function url(path) {
  return BACKEND_URL + path;
}

/** Turn FastAPI error bodies ({detail: str | [{msg, loc}]}) into one readable sentence. */
export function describeError(status, body) {
  const detail = body && typeof body === "object" ? body.detail ?? body.message ?? body.error : body;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail.map((d) => (d.loc ? `${d.loc.filter((p) => p !== "body").join(".")}: ` : "") + d.msg).join("; ");
  }
  if (status === 413) return "The file is too large for this server.";
  if (status === 503) return "The model is unavailable right now. Try again in a moment.";
  return `Request failed (HTTP ${status}).`;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = (response.headers.get("content-type") || "").includes("json") ? await response.json() : await response.text();
  } catch {
    body = null;
  }
  return new ApiError(response.status, describeError(response.status, body), body);
}

/**
 * fetch() with the access token; on 401 it refreshes once and retries, and on a second 401 throws SessionExpired.
 * `options.auth === false` sends no token (login, register, health).
 */
export async function authFetch(path, options = {}) {
  const { auth: useAuth = true, ...init } = options;
  const send = () => {
    const headers = new Headers(init.headers || {});
    if (useAuth && auth.accessToken) headers.set("Authorization", `Bearer ${auth.accessToken}`);
    return fetch(url(path), { ...init, headers });
  };
  let response;
  try {
    response = await send();
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Cannot reach the server. Is the backend running?");
  }
  if (response.status === 401 && useAuth) {
    if (!(await refreshSession())) throw new SessionExpired();
    response = await send();
    if (response.status === 401) {
      auth.clear();
      throw new SessionExpired();
    }
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

let refreshing = null;

/** Exchange the refresh token for new tokens; concurrent callers share one request. */
export function refreshSession() {
  if (!auth.refreshToken) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const response = await fetch(url("/api/auth/refresh"), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: auth.refreshToken }),
      });
      if (!response.ok) {
        auth.clear();
        return false;
      }
      auth.store(await response.json());
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function getJSON(path, options = {}) {
  const response = await authFetch(path, options);
  return response.status === 204 ? null : response.json();
}

export function sendJSON(path, method, body, options = {}) {
  return getJSON(path, {
    ...options,
    method,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// --- endpoints ------------------------------------------------------------------------------

export const api = {
  health: () => getJSON("/api/health", { auth: false }),
  login: (username, password) => sendJSON("/api/auth/login", "POST", { username, password }, { auth: false }),
  register: (username, password) => sendJSON("/api/auth/register", "POST", { username, password }, { auth: false }),
  me: () => getJSON("/api/auth/me"),
  conversations: () => getJSON("/api/conversations"),
  conversation: (id) => getJSON(`/api/conversations/${encodeURIComponent(id)}`),
  renameConversation: (id, title) => sendJSON(`/api/conversations/${encodeURIComponent(id)}`, "PATCH", { title }),
  deleteConversation: (id) => authFetch(`/api/conversations/${encodeURIComponent(id)}`, { method: "DELETE" }),
  run: (id) => getJSON(`/api/runs/${encodeURIComponent(id)}`),
  stopRun: (runId) => authFetch(`/api/chat/${encodeURIComponent(runId)}/stop`, { method: "POST" }),
};

/** Fetch an artifact (figure or generated file) with the token and return a Blob. */
export async function fetchBlob(path) {
  const response = await authFetch(path);
  return response.blob();
}

/** Path of an artifact from an event: the server's url when it gave one, else /api/artifacts/{id}. */
export function artifactPath(event) {
  if (event.url) {
    try {
      const parsed = new URL(event.url, BACKEND_URL || window.location.origin);
      return parsed.pathname + parsed.search;
    } catch {
      /* fall through */
    }
  }
  return `/api/artifacts/${encodeURIComponent(event.artifact_id)}`;
}

/**
 * Upload files as multipart/form-data (field "files") with progress callbacks.
 * XMLHttpRequest is used because fetch() has no upload progress events.
 * Returns {promise, abort}. The promise resolves to the server's JSON reply.
 */
export function uploadFiles(files, { onProgress } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const start = (retried) => {
      xhr.open("POST", url("/api/upload"));
      if (auth.accessToken) xhr.setRequestHeader("Authorization", `Bearer ${auth.accessToken}`);
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
      };
      xhr.onerror = () => reject(new ApiError(0, "Upload failed: cannot reach the server."));
      xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
      xhr.onload = async () => {
        if (xhr.status === 401 && !retried) {
          if (await refreshSession()) return start(true);
          return reject(new SessionExpired());
        }
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response);
        reject(new ApiError(xhr.status, describeError(xhr.status, xhr.response), xhr.response));
      };
      const form = new FormData();
      for (const file of files) form.append("files", file, file.name);
      xhr.send(form);
    };
    start(false);
  });
  return { promise, abort: () => xhr.abort() };
}
