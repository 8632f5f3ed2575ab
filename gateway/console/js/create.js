// Create a job: a form for job.json's fields (one container; the raw JSON editor takes any job.json), and the
// gateway's field errors (a 400's "errors") shown at the field they name.

import { ApiError } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { flattenErrors } from "./model.js";

const EXTENSIONS = [
  ["parallelism", "Parallelism", "pods running at once (default 1)"],
  ["completions", "Completions", "successful pods needed (default 1)"],
  ["backoff_limit", "Backoff limit", "retries before the job fails"],
  ["active_deadline_seconds", "Deadline (s)", "wall-clock limit for the whole job"],
  ["ttl_seconds_after_finished", "Delete after (s)", "delete the finished job after this many seconds"],
];

// Which form field shows an error path of the gateway (first match wins); others go to the summary.
const ERROR_FIELDS = [
  [/^job_name/, "name"], [/^containers\.0\.image/, "image"], [/^containers\.0\.command/, "command"],
  [/^containers\.0\.args/, "args"], [/^containers\.0\.env/, "env"], [/^containers\.0\.resources\.limits\.cpu/, "cpu"],
  [/^containers\.0\.resources\.limits\.memory/, "memory"], [/^containers\.0\.volumeMounts/, "volumes"],
  [/^volumes/, "volumes"], [/^containers\.0\.pull_always/, "pull_always"], [/^containers\.0\.ports/, "ports"],
  [/^sync_timezone/, "sync_timezone"], [/^containers\.0$/, "command"],
  ...EXTENSIONS.map(([key]) => [new RegExp(`^${key}`), key]),
];

const lines = (text) => text.split("\n").map((l) => l.trim()).filter((l) => l);

export function mountCreate(root, ctx) {
  const { api } = ctx;
  const fields = {};
  const errors = {};

  function field(key, label, input, help) {
    input.id = `f-${key}`;
    const err = h("p", { class: "field-error", id: `e-${key}`, role: "alert", hidden: true });
    const helpEl = help ? h("p", { class: "help", id: `h-${key}`, text: help }) : null;
    input.setAttribute("aria-describedby", [help ? `h-${key}` : "", `e-${key}`].filter(Boolean).join(" "));
    fields[key] = input;
    errors[key] = err;
    return h("div", { class: `field field-${key}` }, h("label", { for: input.id, text: label }), input, helpEl, err);
  }

  const name = h("input", { required: true, spellcheck: "false", autocomplete: "off", placeholder: "my-job" });
  const image = h("input", { required: true, spellcheck: "false", autocomplete: "off", placeholder: "index.tenxcloud.com/tenxcloud/perl_job:latest" });
  const command = h("textarea", { rows: "3", spellcheck: "false", placeholder: "echo\ntest-cmd" });
  const args = h("textarea", { rows: "2", spellcheck: "false" });
  const env = h("textarea", { rows: "2", spellcheck: "false", placeholder: "KEY=value" });
  const cpu = h("input", { spellcheck: "false", placeholder: "500m" });
  const memory = h("input", { spellcheck: "false", placeholder: "512Mi" });
  const volumes = h("textarea", { rows: "2", spellcheck: "false", placeholder: "volume-name1:/data" });
  const ports = h("input", { spellcheck: "false", placeholder: "22/TCP" });
  const pull = h("select", {}, h("option", { value: "", text: "cluster default" }), h("option", { value: "true", text: "always" }), h("option", { value: "false", text: "if not present" }));
  const tz = h("input", { type: "checkbox" });
  const ext = EXTENSIONS.map(([key, label, help]) => field(key, label, h("input", { type: "number", min: "0", inputmode: "numeric" }), help));

  const summary = h("div", { class: "error", role: "alert", id: "create-errors", hidden: true });
  const submit = h("button", { type: "submit", class: "button primary", id: "create-submit", text: "Create" });
  const formTab = h("button", { type: "button", role: "tab", class: "tab", id: "tab-form", "aria-selected": "true", text: "Form" });
  const jsonTab = h("button", { type: "button", role: "tab", class: "tab", id: "tab-raw", "aria-selected": "false", text: "Raw JSON" });
  const raw = h("textarea", { id: "f-raw", rows: "18", spellcheck: "false", class: "code", "aria-label": "job.json" });
  const rawError = h("p", { class: "field-error", id: "e-raw", role: "alert", hidden: true });
  const formPane = h("div", { id: "pane-form", class: "form-grid" },
    field("image", "Image", image),
    field("command", "Command", command, "one item per line, e.g. echo / test-cmd"),
    field("args", "Arguments", args, "one item per line (extension)"),
    field("env", "Environment", env, "NAME=value, one per line"),
    field("cpu", "CPU limit", cpu, "e.g. 500m"),
    field("memory", "Memory limit", memory, "e.g. 512Mi"),
    field("volumes", "Host volumes", volumes, "name:/mount/path[:ro], one per line"),
    field("ports", "Ports", ports, "e.g. 22/TCP, 8080"),
    field("pull_always", "Pull image", pull),
    h("div", { class: "field field-check" }, h("label", { class: "check" }, tz, " sync the node's timezone (sync_timezone)")),
    h("fieldset", { class: "extensions" }, h("legend", { text: "Extensions" }), ext));
  tz.id = "f-sync_timezone";
  fields.sync_timezone = tz;
  errors.sync_timezone = h("p", { class: "field-error", id: "e-sync_timezone", hidden: true });
  const rawPane = h("div", { id: "pane-raw", hidden: true }, h("label", { for: "f-raw", text: "job.json" }), raw, rawError);

  const form = h("form", { class: "card create", id: "create-form", novalidate: true, "aria-labelledby": "create-title" },
    h("h1", { id: "create-title", text: "New job" }),
    field("name", "Job name", name, "lower-case letters, digits and '-', at most 63"),
    h("div", { role: "tablist", class: "tabs", "aria-label": "Editor" }, formTab, jsonTab),
    formPane, rawPane, summary,
    h("div", { class: "actions" }, h("a", { href: "#/jobs", class: "button", text: "Cancel" }), submit));
  root.append(form);

  function toJobJson() {
    const container = { image: image.value.trim() };
    if (pull.value) container.pull_always = pull.value === "true";
    if (lines(command.value).length) container.command = lines(command.value);
    if (lines(args.value).length) container.args = lines(args.value);
    const envs = lines(env.value).map((l) => { const i = l.indexOf("="); return i < 0 ? { name: l, value: "" } : { name: l.slice(0, i), value: l.slice(i + 1) }; });
    if (envs.length) container.env = envs;
    const portList = ports.value.split(/[,\s]+/).filter(Boolean).map((p) => { const [n, proto] = p.split("/"); return { port: Number(n), protocol: (proto || "TCP").toUpperCase() }; });
    if (portList.length) container.ports = portList;
    const limits = {};
    if (cpu.value.trim()) limits.cpu = cpu.value.trim();
    if (memory.value.trim()) limits.memory = memory.value.trim();
    if (Object.keys(limits).length) container.resources = { limits };
    const vols = lines(volumes.value).map((l) => { const [n, mountPath, mode] = l.split(":"); return { name: n, mountPath: mountPath || "", readOnly: mode === "ro" }; });
    if (vols.length) container.volumeMounts = vols.map((v) => (v.readOnly ? v : { name: v.name, mountPath: v.mountPath }));
    const body = { containers: [container] };
    if (vols.length) body.volumes = vols.map((v) => ({ name: v.name, type: "host" }));
    if (tz.checked) body.sync_timezone = true;
    for (const [key] of EXTENSIONS) if (fields[key].value !== "") body[key] = Number(fields[key].value);
    return body;
  }

  // job.json -> the form, when it fits (one container); false when only the raw editor can hold it.
  function fromJobJson(body) {
    if (!body || typeof body !== "object" || !Array.isArray(body.containers) || body.containers.length !== 1) return false;
    const c = body.containers[0] || {};
    image.value = c.image || "";
    command.value = (c.command || []).join("\n");
    args.value = (c.args || []).join("\n");
    env.value = (c.env || []).map((e) => `${e.name}=${e.value ?? ""}`).join("\n");
    const limits = (c.resources || {}).limits || {};
    cpu.value = limits.cpu || "";
    memory.value = limits.memory || "";
    volumes.value = (c.volumeMounts || []).map((m) => `${m.name}:${m.mountPath}${m.readOnly ? ":ro" : ""}`).join("\n");
    ports.value = (c.ports || []).map((p) => `${p.port}/${p.protocol || "TCP"}`).join(", ");
    pull.value = c.pull_always === true ? "true" : c.pull_always === false ? "false" : "";
    tz.checked = Boolean(body.sync_timezone);
    for (const [key] of EXTENSIONS) fields[key].value = body[key] ?? "";
    return true;
  }

  function showPane(which) {
    const toRaw = which === "raw";
    if (toRaw && rawPane.hidden) raw.value = JSON.stringify(toJobJson(), null, 2);
    if (!toRaw && formPane.hidden) {
      let parsed = null;
      try { parsed = JSON.parse(raw.value); } catch (err) { parsed = null; }
      if (!fromJobJson(parsed)) { rawError.textContent = "The form holds one container of valid JSON; keep editing here."; rawError.hidden = false; return; }
    }
    formPane.hidden = toRaw;
    rawPane.hidden = !toRaw;
    formTab.setAttribute("aria-selected", String(!toRaw));
    jsonTab.setAttribute("aria-selected", String(toRaw));
  }
  formTab.addEventListener("click", () => showPane("form"));
  jsonTab.addEventListener("click", () => showPane("raw"));

  function clearErrors() {
    for (const [key, el] of Object.entries(errors)) { el.hidden = true; el.textContent = ""; fields[key] && fields[key].removeAttribute("aria-invalid"); }
    rawError.hidden = true;
    summary.hidden = true;
    clear(summary);
  }

  function showErrors(err) {
    const flat = flattenErrors(err.body.errors || {});
    const rest = [];
    const useRaw = !rawPane.hidden;
    let focused = false;
    for (const [path, message] of flat) {
      const match = useRaw ? null : ERROR_FIELDS.find(([re, key]) => re.test(path) && (key === "name" || !formPane.hidden));
      const key = path.startsWith("job_name") ? "name" : match && match[1];
      if (key && errors[key]) {
        const el = errors[key];
        el.textContent = el.textContent ? `${el.textContent} ${message}` : message;
        el.hidden = false;
        fields[key].setAttribute("aria-invalid", "true");
        if (!focused) { fields[key].focus(); focused = true; }
      } else rest.push(path ? `${path}: ${message}` : message);
    }
    if (rest.length || !flat.length) {
      summary.append(h("p", { text: err.message }), rest.length ? h("ul", {}, rest.map((t) => h("li", { text: t }))) : null);
      summary.hidden = false;
      if (!focused) summary.focus();
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let body;
    if (!rawPane.hidden) {
      try { body = JSON.parse(raw.value); } catch (err) { rawError.textContent = `Not valid JSON: ${err.message}`; rawError.hidden = false; raw.focus(); return; }
    } else body = toJobJson();
    const jobName = name.value.trim();
    if (!jobName) { errors.name.textContent = "A job needs a name."; errors.name.hidden = false; name.setAttribute("aria-invalid", "true"); name.focus(); return; }
    submit.disabled = true;
    try {
      await api.createJob(jobName, body);
      toast(`Created ${jobName}.`);
      location.hash = `#/jobs/${encodeURIComponent(jobName)}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) { ctx.onAuthError(); return; }
      if (err instanceof ApiError && err.status === 409) {
        errors.name.textContent = err.message; errors.name.hidden = false; name.setAttribute("aria-invalid", "true"); name.focus();
      } else if (err instanceof ApiError) showErrors(err);
      else { summary.append(h("p", { text: `The gateway cannot be reached: ${err.message}` })); summary.hidden = false; }
    } finally {
      submit.disabled = false;
    }
  });
  summary.tabIndex = -1;
  name.focus();
  return null;
}
