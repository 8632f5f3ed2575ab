// Pure functions over the API's objects: a Job's state, job.json <-> Kubernetes Job, YAML, error paths, times.
// No DOM here, so each is easy to reason about.

export const STATUSES = ["queued", "pending", "running", "succeeded", "failed", "suspended"];
const QUEUE_LABEL = "kueue.x-k8s.io/queue-name";

// Waiting its turn in a Kueue queue (GATEWAY_QUEUE=kueue): suspended until Kueue admits it.
export function isQueued(job) {
  return Boolean((job.spec || {}).suspend) && QUEUE_LABEL in (((job.metadata || {}).labels) || {});
}

function conditionTrue(job, type) {
  return ((job.status || {}).conditions || []).some((c) => c.type === type && c.status === "True");
}

// The one status word a Job shows, as the watch stream names it (plus "queued" and "suspended").
export function jobStatus(job) {
  if (conditionTrue(job, "Complete")) return "succeeded";
  if (conditionTrue(job, "Failed")) return "failed";
  if (isQueued(job)) return "queued";
  if ((job.spec || {}).suspend) return "suspended";
  if (((job.status || {}).active || 0) > 0) return "running";
  return "pending";
}

function finishedAt(job) {
  const status = job.status || {};
  if (status.completionTime) return status.completionTime;
  const failed = (status.conditions || []).find((c) => c.type === "Failed" && c.status === "True");
  return failed ? failed.lastTransitionTime || null : null;
}

// A Job (as GET /jobs returns it) -> the row the jobs table shows.
export function jobRow(job) {
  const spec = job.spec || {};
  const status = job.status || {};
  return {
    name: (job.metadata || {}).name || "",
    status: jobStatus(job),
    suspended: Boolean(spec.suspend),
    queued: isQueued(job),
    succeeded: status.succeeded || 0,
    failed: status.failed || 0,
    active: status.active || 0,
    completions: spec.completions == null ? 1 : spec.completions,
    parallelism: spec.parallelism == null ? 1 : spec.parallelism,
    created: (job.metadata || {}).creationTimestamp || null,
    started: status.startTime || null,
    finished: finishedAt(job),
  };
}

// A watch event's summary merged into a row. The summary has no times (those stay as they were) and does not know
// suspension: a suspended job it calls "pending" stays "suspended" until the job is read again.
export function mergeSummary(row, summary) {
  const merged = { ...(row || { name: summary.name, created: null, started: null, finished: null, suspended: false }) };
  for (const key of ["status", "active", "succeeded", "failed", "completions", "parallelism"]) {
    if (summary[key] !== undefined && summary[key] !== null) merged[key] = summary[key];
  }
  if (merged.suspended && merged.status === "pending") merged.status = merged.queued ? "queued" : "suspended";
  return merged;
}

// A queued job's place, as GET /jobs/{name} says it in `queue` (gateway/queueing.py): one line for a person.
export function queueText(queue) {
  if (!queue) return "";
  if (queue.state === "admitted") {
    return `Admitted from queue ${queue.name}${queue.admitted_at ? ` at ${formatStamp(queue.admitted_at)}` : ""}.`;
  }
  const place = queue.position ? ` — ${queue.position} of ${queue.waiting} waiting` : "";
  const why = queue.message ? ` (${queue.reason}: ${queue.message})` : queue.reason ? ` (${queue.reason})` : "";
  return `Queued in ${queue.name}${place}${why}.`;
}

const EXTENSIONS = {
  parallelism: "parallelism", completions: "completions", backoffLimit: "backoff_limit",
  activeDeadlineSeconds: "active_deadline_seconds", ttlSecondsAfterFinished: "ttl_seconds_after_finished",
};
const DEFAULTS = { parallelism: 1, completions: 1, backoffLimit: 6 };
const TIMEZONE_VOLUME = "tenxcloud-time-zone";

// The Job the gateway made -> the job.json that makes it (the reverse of gateway/manifest.py): the gateway keeps no
// copy of the request, and this is what a user would send to get the same Job again.
export function jobJsonOf(job) {
  const spec = job.spec || {};
  const pod = ((spec.template || {}).spec) || {};
  const volumes = (pod.volumes || []).filter((v) => v.name !== TIMEZONE_VOLUME);
  const result = {
    containers: (pod.containers || []).map((c) => {
      const out = { image: c.image };
      if (c.imagePullPolicy === "Always") out.pull_always = true;
      else if (c.imagePullPolicy === "IfNotPresent") out.pull_always = false;
      if (c.command) out.command = c.command;
      if (c.args) out.args = c.args;
      if (c.env && c.env.length) out.env = c.env.map((e) => ({ name: e.name, value: e.value || "" }));
      if (c.ports && c.ports.length) out.ports = c.ports.map((p) => ({ port: p.containerPort, protocol: p.protocol || "TCP" }));
      const limits = (c.resources || {}).limits;
      if (limits && Object.keys(limits).length) out.resources = { limits: { ...limits } };
      const mounts = (c.volumeMounts || []).filter((m) => m.name !== TIMEZONE_VOLUME)
        .map((m) => (m.readOnly ? { name: m.name, mountPath: m.mountPath, readOnly: true } : { name: m.name, mountPath: m.mountPath }));
      if (mounts.length) out.volumeMounts = mounts;
      return out;
    }),
  };
  if (volumes.length) result.volumes = volumes.map((v) => ({ name: v.name, type: "host" }));
  if ((pod.volumes || []).some((v) => v.name === TIMEZONE_VOLUME)) result.sync_timezone = true;
  for (const [field, key] of Object.entries(EXTENSIONS)) {
    // values equal to the defaults (the gateway's 1 and 1, Kubernetes' backoffLimit 6) were most likely not asked for
    if (spec[field] !== undefined && spec[field] !== null && spec[field] !== DEFAULTS[field]) result[key] = spec[field];
  }
  return result;
}

// A small YAML writer for JSON values (block style; strings quoted when YAML would read them as something else).
const PLAIN = /^[A-Za-z_/.][A-Za-z0-9_./:@ -]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|~|y|n)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = String(value);
  if (text && PLAIN.test(text) && !RESERVED.test(text) && !text.endsWith(" ") && !text.includes(": ") && !text.includes(" #")) return text;
  return JSON.stringify(text);
}

export function toYaml(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return value.map((item) => {
      if (item && typeof item === "object" && Object.keys(item).length) {
        const inner = toYaml(item, indent + "  ");
        return `${indent}- ${inner.slice(indent.length + 2)}`;
      }
      return `${indent}- ${item && typeof item === "object" ? (Array.isArray(item) ? "[]" : "{}") : scalar(item)}`;
    }).join("\n");
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return "{}";
    return keys.map((key) => {
      const item = value[key];
      const name = PLAIN.test(key) && !RESERVED.test(key) ? key : JSON.stringify(key);
      if (item && typeof item === "object" && Object.keys(item).length) {
        return `${indent}${name}:\n${toYaml(item, Array.isArray(item) ? indent : indent + "  ")}`;
      }
      return `${indent}${name}: ${item && typeof item === "object" ? (Array.isArray(item) ? "[]" : "{}") : scalar(item)}`;
    }).join("\n");
  }
  return indent + scalar(value);
}

// The gateway's 400 "errors" (marshmallow's nested {"containers": {"0": {"image": [...]}}} and flat
// "containers.0.env" keys) -> [["containers.0.image", "message"], ...].
export function flattenErrors(errors, prefix = "") {
  const out = [];
  if (Array.isArray(errors)) {
    for (const item of errors) {
      if (item && typeof item === "object") out.push(...flattenErrors(item, prefix));
      else out.push([prefix, String(item)]);
    }
  } else if (errors && typeof errors === "object") {
    for (const [key, value] of Object.entries(errors)) out.push(...flattenErrors(value, prefix ? `${prefix}.${key}` : key));
  } else if (errors !== undefined && errors !== null) {
    out.push([prefix, String(errors)]);
  }
  return out;
}

// Times: the API gives RFC 3339 stamps.
export function parseTime(stamp) {
  if (!stamp) return null;
  const t = Date.parse(stamp);
  return Number.isNaN(t) ? null : t;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

export function formatStamp(stamp) {
  const t = parseTime(stamp);
  if (t === null) return "";
  const d = new Date(t);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function rowDuration(row, now) {
  const start = parseTime(row.started);
  if (start === null) return null;
  const end = parseTime(row.finished);
  return (end === null ? now : end) - start;
}

// Today's calendar day in the gateway's log timezone, as an <input type=date> value (YYYY-MM-DD).
export function todayIn(timeZone, now = new Date()) {
  try {
    const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
      .formatToParts(now);
    const get = (type) => parts.find((p) => p.type === type).value;
    return `${get("year")}-${get("month")}-${get("day")}`;
  } catch (err) {
    return now.toISOString().slice(0, 10);
  }
}

export function apiDate(inputValue) {
  return inputValue ? inputValue.replaceAll("-", ".") : "";
}
