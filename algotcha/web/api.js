// The API of API.md: the session token, JSON requests, problem+json errors, and live job status.

import { ACTIVE_STATUSES, FINAL_STATUSES } from "./vocabulary.js";

const TOKEN_KEY = "algotcha.token";
export const FINAL = new Set(FINAL_STATUSES);
export const ACTIVE = new Set(ACTIVE_STATUSES);
const POLL_MS = 2000;

/** An answer that was not 2xx; `problem` is the RFC 9457 body (may be empty). */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `the server answered ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  /** [{field, message}] of a 422, e.g. field "payload.longEntry". */
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

let onUnauthorized = () => {};

export const session = {
  get token() {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (!saved) return null;
    try {
      const { token, expiresAt } = JSON.parse(saved);
      if (Date.now() < expiresAt) return token;
    } catch {
      /* a damaged entry is the same as none */
    }
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  },
  save(token, expiresInS) {
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token, expiresAt: Date.now() + expiresInS * 1000 }));
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
  /** Called when the server refuses the token (expired, or signed with an old secret). */
  onUnauthorized(callback) {
    onUnauthorized = callback;
  },
};

function headers(extra = {}) {
  const token = session.token;
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

export async function request(method, path, body, { signal } = {}) {
  const init = { method, headers: headers({ Accept: "application/json" }), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (signal && signal.aborted) throw err;
    throw new ApiError(0, { detail: "The server cannot be reached. Check your connection and try again." });
  }
  const type = response.headers.get("content-type") || "";
  const data = response.status !== 204 && type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    if (response.status === 401 && init.headers.Authorization) onUnauthorized();
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, opts) => request("GET", path, undefined, opts);

/** Saves the answer of `path` as a file: a link cannot carry the bearer header, fetch can. */
export async function download(path, filename) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    const type = response.headers.get("content-type") || "";
    throw new ApiError(response.status, type.includes("json") ? await response.json() : null);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal)
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
  });
}

/**
 * Calls onState({id, status, queuePosition, progress, estimatedWait}) on every change until the
 * job ends or `signal` aborts. EventSource cannot send the bearer header, so the event stream is
 * read with fetch(); when it cannot be opened or breaks off, the position route is polled.
 */
export async function follow(id, onState, signal) {
  try {
    if (await streamEvents(id, onState, signal)) return;
  } catch (err) {
    if (signal.aborted) return;
    if (err instanceof ApiError && err.status === 404) throw err;
  }
  while (!signal.aborted) {
    try {
      const state = await get(`/api/backtest/queue/position/${id}`, { signal });
      onState(state);
      if (FINAL.has(state.status)) return;
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && (err.status === 404 || err.status === 401)) throw err;
    }
    await sleep(POLL_MS, signal);
  }
}

/** True when the stream reached a final status; false when it ended early. */
async function streamEvents(id, onState, signal) {
  const response = await fetch(`/api/backtest/queue/${id}/events`, {
    headers: headers({ Accept: "text/event-stream" }),
    cache: "no-store",
    signal,
  });
  if (!response.ok || !response.body) {
    const type = response.headers.get("content-type") || "";
    throw new ApiError(response.status, type.includes("json") ? await response.json() : null);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    buffer = buffer.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue; // a keep-alive comment
      const state = JSON.parse(data);
      onState(state);
      if (FINAL.has(state.status)) {
        reader.cancel().catch(() => {});
        return true;
      }
    }
  }
}
