// The Jobs API as the console uses it: the original's two headers on every call, the JSON error shape, and the
// follow/watch streams (Server-Sent Events) opened with a short-lived stream token, with a fallback to polling on a
// gateway that does not stream.

import { jobRow } from "./model.js";

const STORE = window.sessionStorage;  // the tab's session only: closing the tab forgets the token

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export function session() {
  const user = STORE.getItem("tenx.user");
  const token = STORE.getItem("tenx.token");
  const region = STORE.getItem("tenx.region");
  return user && token && region ? { user, token, region } : null;
}

export function saveSession({ user, token, region }) {
  STORE.setItem("tenx.user", user);
  STORE.setItem("tenx.token", token);
  STORE.setItem("tenx.region", region);
}

export function clearSession() {
  STORE.removeItem("tenx.user");
  STORE.removeItem("tenx.token");
  STORE.removeItem("tenx.region");
}

const seg = encodeURIComponent;

// One worker for the job list, started on first use. Its URL passes through a Trusted Types policy that admits
// that one script only (the page's CSP allows no other). null where workers cannot start: the page parses itself.
const WORKER_URL = new URL("./listworker.js", import.meta.url).href;
let worker;
let workerCalls = 0;
function listWorker() {
  if (worker !== undefined) return worker;
  try {
    let url = WORKER_URL;
    if (window.trustedTypes) {
      url = window.trustedTypes.createPolicy("tenx-console", {
        createScriptURL: (value) => { if (value !== WORKER_URL) throw new TypeError("not the console's worker"); return value; },
      }).createScriptURL(WORKER_URL);
    }
    worker = new Worker(url, { type: "module", name: "job list" });
  } catch (err) {
    worker = null;
  }
  return worker;
}
// kind of stream -> true | false once known (does this gateway stream it?), for as long as the page lives
const STREAMS = {};

export class Api {
  constructor({ user, token, region }) {
    this.user = user;
    this.token = token;
    this.base = `/v1/regions/${seg(region)}`;
    this.streams = STREAMS;
  }

  headers(extra = {}) {
    return { username: this.user, Authorization: `token ${this.token}`, ...extra };
  }

  async request(method, path, { body, query, signal, raw } = {}) {
    const url = this.base + path + (query ? `?${new URLSearchParams(query)}` : "");
    const init = { method, headers: this.headers(), signal, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(url, init);
    if (!response.ok) {
      let parsed = null;
      try { parsed = await response.json(); } catch (err) { parsed = { message: `HTTP ${response.status}` }; }
      throw new ApiError(response.status, parsed);
    }
    if (raw) return response;
    return response.json();
  }

  // Proves the credentials with a call that asks no cluster: a stream token (POST /stream-tokens); a gateway
  // without streams answers that with 404, and then the job list proves them. (A call answered with an error
  // status would show up in the browser's console as a failed load, so the check uses only calls that succeed.)
  async check() {
    try {
      await this.request("POST", "/stream-tokens");
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 404 || err.status === 405))) throw err;
      await this.request("GET", "/jobs", { raw: true }).then((response) => response.body && response.body.cancel());
    }
  }

  listJobs(signal) { return this.request("GET", "/jobs", { signal }); }

  // The job list as table rows ({rows, truncated}), read and parsed in a worker where the page can start one.
  async listRows() {
    const worker = listWorker();
    if (!worker) {
      const body = await this.listJobs();
      return { rows: (body.jobs || []).map(jobRow), truncated: Boolean(body.truncated) };
    }
    const id = ++workerCalls;
    return new Promise((resolve, reject) => {
      const answer = (event) => {
        if (event.data.id !== id) return;
        worker.removeEventListener("message", answer);
        if (event.data.error) reject(new ApiError(event.data.error.status, event.data.error.body));
        else resolve(event.data);
      };
      worker.addEventListener("message", answer);
      worker.postMessage({ id, url: `${location.origin}${this.base}/jobs`, headers: this.headers() });
    });
  }
  getJob(name) { return this.request("GET", `/jobs/${seg(name)}`); }
  instances(name) { return this.request("GET", `/jobs/${seg(name)}/instances`); }
  createJob(name, body) { return this.request("POST", `/jobs/${seg(name)}`, { body }); }
  deleteJob(name) { return this.request("DELETE", `/jobs/${seg(name)}`); }

  logsPath(job, instance) {
    return instance ? `/jobs/${seg(job)}/instances/${seg(instance)}/logs` : `/jobs/${seg(job)}/logs`;
  }

  // One page of lines: {lines, truncated}.
  async logs(job, instance, { date, from, size, signal }) {
    const query = { from: String(from), size: String(size) };
    if (date) query.date = date;
    const response = await this.request("GET", this.logsPath(job, instance), { query, signal, raw: true });
    return { lines: await response.json(), truncated: response.headers.get("X-Log-Truncated") === "true" };
  }

  async streamToken() {
    const body = await this.request("POST", "/stream-tokens");
    return body.stream_token;
  }

  // Does the gateway stream `path?query`? Asked once per kind of stream with the ordinary headers: the answer's
  // Content-Type says, and the probe is cancelled as soon as its headers are in. (EventSource alone cannot tell a
  // gateway without streams from a network error, and logs an error for a JSON answer.)
  async streams_(kind, path, query) {
    if (this.streams[kind] !== undefined) return this.streams[kind];
    const controller = new AbortController();
    try {
      const url = `${this.base}${path}?${new URLSearchParams(query)}`;
      const response = await fetch(url, { headers: this.headers(), signal: controller.signal, cache: "no-store" });
      const type = response.headers.get("Content-Type") || "";
      controller.abort();
      if (response.ok || type.startsWith("text/event-stream")) this.streams[kind] = type.startsWith("text/event-stream");
      else if (response.status === 404 || response.status === 405 || response.status === 400) this.streams[kind] = false;
      else return false;  // 401/429/503...: not known yet, poll for now and ask again next time
    } catch (err) {
      return false;
    }
    return this.streams[kind];
  }

  // Opens a stream of `path` with `query` and calls handlers.message(data, id) for each plain event and
  // handlers[name](data) for named ones ("status", "job", "end", "shutdown", "error"). Resumes by itself after a
  // "shutdown" or a dropped connection (a fresh token, last_event_id of the last event), until close().
  // Resolves to a Stream, or to null when the gateway does not stream this: the caller polls instead.
  async open(kind, path, query, handlers) {
    if (!(await this.streams_(kind, path, query))) return null;
    // only a log's event ids are offsets to resume from; a watch's are counters, and a new watch starts afresh
    const stream = new Stream(this, path, query, handlers, kind === "follow");
    await stream.connect();
    return stream;
  }
}

class Stream {
  constructor(api, path, query, handlers, resumable) {
    this.api = api;
    this.resumable = resumable;
    this.path = path;
    this.query = query;
    this.handlers = handlers;
    this.lastId = null;
    this.source = null;
    this.closed = false;
    this.timer = null;
    this.failures = 0;
  }

  async connect() {
    if (this.closed) return;
    let token;
    try {
      token = await this.api.streamToken();
    } catch (err) {
      this.retry();
      return;
    }
    if (this.closed) return;
    const query = { ...this.query, stream_token: token };
    if (this.resumable && this.lastId !== null) query.last_event_id = this.lastId;
    const source = new EventSource(`${this.api.base}${this.path}?${new URLSearchParams(query)}`);
    this.source = source;
    const parse = (event) => {
      try { return JSON.parse(event.data); } catch (err) { return null; }
    };
    source.onopen = () => { this.failures = 0; if (this.handlers.open) this.handlers.open(); };
    source.onmessage = (event) => {
      if (event.lastEventId) this.lastId = event.lastEventId;
      this.handlers.message && this.handlers.message(parse(event), event.lastEventId);
    };
    for (const name of ["status", "job"]) {
      source.addEventListener(name, (event) => {
        if (event.lastEventId) this.lastId = event.lastEventId;
        this.handlers[name] && this.handlers[name](parse(event));
      });
    }
    source.addEventListener("end", (event) => {
      this.stop();
      this.handlers.end && this.handlers.end(parse(event));
    });
    source.addEventListener("shutdown", (event) => {
      const data = parse(event) || {};
      if (data.resume !== undefined && data.resume !== null) this.lastId = String(data.resume);
      this.drop();
      this.retry(0);
    });
    // a server-sent "error" event carries data; the EventSource's own error (network, closed stream) has none
    source.addEventListener("error", (event) => {
      if (event.data) {
        this.drop();
        this.handlers.failed && this.handlers.failed(parse(event));
        this.retry();
        return;
      }
      // never let EventSource reconnect by itself: its URL holds a token that may have expired
      this.drop();
      this.retry();
    });
  }

  drop() {
    if (this.source) { this.source.close(); this.source = null; }
  }

  retry(delay) {
    if (this.closed) return;
    this.failures += 1;
    const wait = delay !== undefined ? delay : Math.min(30000, 1000 * 2 ** Math.min(this.failures, 5));
    clearTimeout(this.timer);
    if (this.handlers.reconnecting) this.handlers.reconnecting();
    this.timer = setTimeout(() => this.connect(), wait);
  }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    this.drop();
  }

  close() { this.stop(); }
}
