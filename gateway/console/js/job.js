// One job: its state, conditions and instances (live through the job's watch stream, else polled), its spec as
// job.json and as the Job's YAML, links to its logs, and delete with a confirmation.

import { ApiError } from "./api.js";
import { clear, confirmDialog, h, statusBadge, toast } from "./dom.js";
import { formatDuration, formatStamp, jobJsonOf, jobRow, parseTime, queueText, rowDuration, toYaml } from "./model.js";

function cell(text, cls) { return h("td", { class: cls, text: text === null || text === undefined ? "" : String(text) }); }

function exitInfo(instance) {
  const c = (instance.containers || [])[0] || {};
  const last = c.state === "terminated" ? c : (c.last_state || {});
  return {
    exit: last.exit_code !== undefined ? last.exit_code : "",
    reason: c.reason || last.reason || instance.reason || "",
    message: c.message || instance.message || "",
  };
}

export function mountJob(root, ctx, name) {
  const { api } = ctx;
  let stopped = false;
  let stream = null;
  let timer = null;
  let job = null;
  let finished = false;
  let current = null;  // the row the facts show, kept for the ticking durations
  const logsHref = `#/jobs/${encodeURIComponent(name)}/logs`;

  const title = h("h1", { class: "job-title" }, h("span", { text: name }));
  const badge = h("span", { id: "job-status" });
  const live = h("span", { class: "live muted", id: "job-live" });
  const del = h("button", { type: "button", class: "button danger", id: "job-delete", text: "Delete" });
  const error = h("p", { class: "error", role: "alert", hidden: true, id: "job-error" });
  const held = h("div", { class: "notice", role: "status", hidden: true, id: "job-held" });
  const queued = h("div", { class: "notice", role: "status", hidden: true, id: "job-queue" });
  let queueTimer = null;
  const facts = h("dl", { class: "facts", id: "job-facts" });
  const conditions = h("tbody");
  const instances = h("tbody", { id: "job-instances" });
  const specJson = h("pre", { class: "code", id: "job-spec-json", tabindex: "0" });
  const specYaml = h("pre", { class: "code", id: "job-spec-yaml", tabindex: "0", hidden: true });
  const tabJson = h("button", { type: "button", role: "tab", class: "tab", "aria-selected": "true", id: "tab-json", text: "job.json" });
  const tabYaml = h("button", { type: "button", role: "tab", class: "tab", "aria-selected": "false", id: "tab-yaml", text: "Job YAML" });
  tabJson.addEventListener("click", () => { specJson.hidden = false; specYaml.hidden = true; tabJson.setAttribute("aria-selected", "true"); tabYaml.setAttribute("aria-selected", "false"); });
  tabYaml.addEventListener("click", () => { specJson.hidden = true; specYaml.hidden = false; tabJson.setAttribute("aria-selected", "false"); tabYaml.setAttribute("aria-selected", "true"); });

  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs", text: "Jobs" }), " / ", name),
    h("div", { class: "toolbar" }, title, badge, live,
      h("a", { href: logsHref, class: "button", id: "job-logs", text: "Logs" }), del),
    error, queued, held, facts,
    h("section", { "aria-labelledby": "h-instances" }, h("h2", { id: "h-instances", text: "Instances" }),
      h("div", { class: "scroll-x" }, h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["Instance", "Phase", "Node", "Exit code", "Reason", "Restarts", "Started", "Finished"].map((t) => h("th", { scope: "col", text: t })))),
        instances))),
    h("section", { "aria-labelledby": "h-conditions" }, h("h2", { id: "h-conditions", text: "Conditions" }),
      h("div", { class: "scroll-x" }, h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Message", "Since"].map((t) => h("th", { scope: "col", text: t })))),
        conditions))),
    h("section", { "aria-labelledby": "h-spec" }, h("h2", { id: "h-spec", text: "Spec" }),
      h("div", { role: "tablist", class: "tabs", "aria-label": "Spec format" }, tabJson, tabYaml), specJson, specYaml));

  function renderFacts(row) {
    current = row;
    clear(facts);
    const t = Date.now();
    const created = parseTime(row.created);
    const pairs = [["Completions", `${row.succeeded}/${row.completions}`], ["Parallelism", row.parallelism],
      ["Active", row.active], ["Failed", row.failed], ["Started", formatStamp(row.started) || "—"],
      ["Duration", formatDuration(rowDuration(row, t)) || "—"], ["Age", created === null ? "—" : formatDuration(t - created)]];
    for (const [k, v] of pairs) facts.append(h("div", {}, h("dt", { text: k }), h("dd", { text: String(v) })));
  }

  function renderStatus(status) {
    clear(badge).append(statusBadge(status));
  }

  function renderConditions(list) {
    clear(conditions);
    if (!list || !list.length) { conditions.append(h("tr", {}, h("td", { colspan: "5", class: "muted", text: "None yet." }))); return; }
    for (const c of list) {
      conditions.append(h("tr", { class: c.type === "PodsHeldBack" ? "warn" : null }, cell(c.type), cell(c.status), cell(c.reason), cell(c.message, "wrap"),
        cell(formatStamp(c.lastTransitionTime))));
    }
  }

  function renderInstances(body) {
    clear(instances);
    const list = (body && body.instances) || [];
    if (body && body.held_back) {
      held.hidden = false;
      held.textContent = `Pods held back (${body.held_back.reason}): ${body.held_back.message}`;
    } else held.hidden = true;
    if (!list.length) { instances.append(h("tr", {}, h("td", { colspan: "8", class: "muted", text: "No instances yet." }))); return; }
    for (const inst of list) {
      const info = exitInfo(inst);
      instances.append(h("tr", { class: "instance" },
        h("td", {}, h("a", { href: `${logsHref}/${encodeURIComponent(inst.name)}`, text: inst.name, class: "instance-link" })),
        h("td", {}, h("span", { class: `badge phase-${String(inst.phase || "").toLowerCase()}`, text: inst.phase || "" })),
        cell(inst.node || "—"), cell(info.exit), cell(info.reason, "wrap"), cell(inst.restart_count || 0),
        cell(formatStamp(inst.started)), cell(formatStamp(inst.finished))));
      const why = inst.scheduling ? `${inst.scheduling.reason}: ${inst.scheduling.message}` : info.message;
      if (why) instances.append(h("tr", { class: "instance-why" }, h("td", { colspan: "8", class: "wrap muted", text: why })));
    }
  }

  function fail(err) {
    if (err instanceof ApiError && err.status === 401) { ctx.onAuthError(); return true; }
    if (err instanceof ApiError && err.status === 404) {
      error.textContent = `Job ${name} does not exist (deleted?).`;
      error.hidden = false;
      finished = true;
      return true;
    }
    error.textContent = err.message;
    error.hidden = false;
    return false;
  }

  async function readJob() {
    job = await api.getJob(name);
    const row = jobRow(job);
    renderStatus(row.status);
    renderFacts(row);
    renderConditions((job.status || {}).conditions);
    specJson.textContent = JSON.stringify(jobJsonOf(job), null, 2);
    const shown = { ...job };
    delete shown.instance_names;
    delete shown.queue;
    specYaml.textContent = toYaml(shown);
    renderQueue(job.queue);
    return row;
  }

  // A queued job's place moves as others are admitted, which its own watch stream does not tell: read it again
  // every 2 s while it waits.
  function renderQueue(queue) {
    queued.hidden = !queue;
    queued.textContent = queueText(queue);
    clearTimeout(queueTimer);
    if (queue && queue.state === "queued" && !stopped) {
      queueTimer = setTimeout(() => { readJob().catch(fail); }, 2000);
    }
  }

  async function poll() {
    if (stopped) return;
    try {
      const [row, inst] = await Promise.all([readJob(), api.instances(name)]);
      renderInstances(inst);
      error.hidden = true;
      if (row.status === "succeeded" || row.status === "failed") finished = true;
    } catch (err) {
      if (fail(err)) { live.textContent = ""; return; }
    }
    if (!stopped && !stream && !finished) {
      live.textContent = "refreshed every 2 s";
      timer = setTimeout(poll, 2000);
    } else if (finished) live.textContent = "";
  }

  async function refresh() {
    try {
      const [, inst] = await Promise.all([readJob(), api.instances(name)]);
      renderInstances(inst);
    } catch (err) { fail(err); }
  }

  async function start() {
    await poll();
    if (stopped || finished || !job) return;
    stream = await api.open("watch", `/jobs/${encodeURIComponent(name)}/watch`, {}, {
      open: () => { live.textContent = "live"; },
      // while the stream is down, each retry also reads the job once, so the page never stands still
      reconnecting: () => { live.textContent = "reconnecting…"; refresh(); },
      status: (data) => {
        if (!data) return;
        const waiting = job && job.queue && job.queue.state === "queued";
        renderStatus(waiting && data.status === "pending" ? "queued" : data.status);
        if (waiting && data.status !== "pending") readJob().catch(fail);  // admitted: say when
        renderConditions(data.conditions);
        renderInstances({ instances: data.instances });
        const row = { ...jobRow(job), ...data };
        renderFacts(row);
      },
      end: async (data) => {
        live.textContent = "";
        if (data && data.status === "deleted") { renderStatus("deleted"); error.textContent = `Job ${name} was deleted.`; error.hidden = false; return; }
        try { await readJob(); renderInstances(await api.instances(name)); } catch (err) { fail(err); }
      },
    }).catch(() => null);
    if (stopped) { if (stream) stream.close(); return; }
    if (stream) { clearTimeout(timer); live.textContent = "live"; }
  }

  del.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete ${name}?`, "The job, its pods and their live logs go; archived logs stay until they expire.", "Delete"))) return;
    try {
      await api.deleteJob(name);
      toast(`Deleted ${name}.`);
      location.hash = "#/jobs";
    } catch (err) {
      if (!fail(err)) toast(`Could not delete ${name}: ${err.message}`, "error");
    }
  });

  const ticker = setInterval(() => { if (current && !finished) renderFacts(current); }, 1000);
  start();
  return () => { stopped = true; clearTimeout(timer); clearTimeout(queueTimer); clearInterval(ticker); if (stream) stream.close(); };
}
