// Logs of one instance or of the whole job: by day (today in the gateway's log timezone by default), read in pages
// with from/size as the reader scrolls, followed live (the follow stream, else polling), filtered, downloaded.
// Only the lines in view are in the DOM, so 100,000 lines scroll like 100.

import { ApiError } from "./api.js";
import { h, toast } from "./dom.js";
import { apiDate, todayIn } from "./model.js";
import { VirtualList } from "./vlist.js";

export function mountLogs(root, ctx, job, instance) {
  const { api, config } = ctx;
  const pageSize = Math.min(config.log_default_size || 1000, config.log_max_size || 10000);
  const bigPage = config.log_max_size || 10000;
  let lines = [];          // every line read so far, in order (offset = index)
  let view = null;         // indexes of lines matching the filter, or null for all
  let complete = false;    // the last page read was short: nothing more until new lines are written
  let loading = null;
  let stream = null;
  let pollTimer = null;
  let stopped = false;
  let generation = 0;      // bumps when the day or instance changes: answers for an older one are dropped
  const path = `#/jobs/${encodeURIComponent(job)}`;

  const which = h("select", { id: "logs-instance", "aria-label": "Instance" }, h("option", { value: "", text: "All instances (job log)" }));
  if (instance) which.append(h("option", { value: instance, text: instance, selected: true }));
  const today = todayIn(config.log_timezone);
  const date = h("input", { id: "logs-date", type: "date", value: today, "aria-label": `Day (${config.log_timezone})` });
  const allDays = h("input", { id: "logs-all-days", type: "checkbox" });
  const filter = h("input", { id: "logs-filter", type: "search", placeholder: "Filter lines", "aria-label": "Filter lines", spellcheck: "false" });
  const follow = h("button", { type: "button", class: "button", id: "logs-follow", "aria-pressed": "false", text: "Follow" });
  const download = h("button", { type: "button", class: "button", id: "logs-download", text: "Download day" });
  const toEnd = h("button", { type: "button", class: "button", id: "logs-end", text: "To the end" });
  const info = h("span", { class: "muted", id: "logs-info", "aria-live": "polite" });
  const ended = h("p", { class: "notice", id: "logs-ended", role: "status", hidden: true });
  const error = h("p", { class: "error", role: "alert", hidden: true, id: "logs-error" });
  const box = h("div", { class: "vbox log-box", id: "log-lines", tabindex: "0", role: "log", "aria-label": "Log lines" });
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs", text: "Jobs" }), " / ", h("a", { href: path, text: job }), " / logs"),
    h("div", { class: "toolbar" }, h("h1", { text: instance ? `Log of ${instance}` : `Log of ${job}` })),
    h("div", { class: "toolbar filters" }, which, h("span", { class: "check" }, date, h("span", { class: "muted", text: config.log_timezone })),
      h("label", { class: "check" }, allDays, " all days"), filter),
    h("div", { class: "toolbar" }, follow, toEnd, download, info),
    error, ended, box);

  const list = new VirtualList(box, (i) => {
    const index = view ? view[i] : i;
    return h("div", { class: "line", role: "presentation" },
      h("span", { class: "ln", text: String(index + 1), "aria-hidden": "true" }), h("span", { class: "lt", text: lines[index] }));
  });
  list.onRender = (first, last) => {
    // read the next page when the reader comes near the end of what is loaded
    if (!complete && !loading && last >= (view ? view.length : lines.length) - 50) loadMore(pageSize);
  };

  function dayQuery() { return allDays.checked ? "" : apiDate(date.value); }

  function showInfo() {
    const total = `${lines.length.toLocaleString("en")} line${lines.length === 1 ? "" : "s"}${complete ? "" : "+"}`;
    info.textContent = view ? `${view.length.toLocaleString("en")} of ${total} match` : total;
  }

  function applyFilter(added = 0) {
    const text = filter.value;
    if (!text) view = null;
    else if (view && added) {
      for (let i = lines.length - added; i < lines.length; i += 1) if (lines[i].includes(text)) view.push(i);
    } else {
      view = [];
      for (let i = 0; i < lines.length; i += 1) if (lines[i].includes(text)) view.push(i);
    }
    list.setCount(view ? view.length : lines.length, { keepBottom: follow.getAttribute("aria-pressed") === "true" });
    showInfo();
  }

  function add(newLines) {
    if (!newLines.length) return;
    for (const line of newLines) lines.push(line);
    applyFilter(newLines.length);
  }

  function fail(err) {
    if (err instanceof ApiError && err.status === 401) { ctx.onAuthError(); return; }
    error.textContent = err instanceof ApiError ? `${err.status}: ${err.message}` : `The gateway cannot be reached: ${err.message}`;
    error.hidden = false;
  }

  // One page from where we are; a short page means the end of what exists now.
  async function loadMore(size) {
    if (loading) return loading;
    const mine = generation;
    loading = (async () => {
      try {
        const page = await api.logs(job, instance, { date: dayQuery(), from: lines.length, size });
        if (mine !== generation) return;
        error.hidden = true;
        complete = page.lines.length < size && !page.truncated;
        add(page.lines);
        showInfo();
      } catch (err) {
        if (mine === generation) { fail(err); complete = true; }
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  async function loadToEnd() {
    const mine = generation;
    while (!complete && !stopped && mine === generation) await loadMore(bigPage);
  }

  async function startFollow() {
    follow.setAttribute("aria-pressed", "true");
    follow.textContent = "Following…";
    ended.hidden = true;
    const mine = generation;
    await loadToEnd();
    if (stopped || mine !== generation || follow.getAttribute("aria-pressed") !== "true") return;
    list.scrollToEnd();
    const query = { follow: "true", from: String(lines.length) };
    if (dayQuery()) query.date = dayQuery();
    const opened = await api.open("follow", api.logsPath(job, instance), query, {
      message: (data) => {
        if (!data || mine !== generation) return;
        if (data.offset !== undefined && data.offset < lines.length) return;  // a replayed line we hold
        add([instance ? data.line : `[${data.instance}] ${data.line}`]);
      },
      end: (data) => { stopFollow(); showEnd(data); },
      failed: (data) => { if (data) fail(new ApiError(data.code || 500, data)); },
    }).catch(() => null);
    if (mine !== generation || follow.getAttribute("aria-pressed") !== "true") { if (opened) opened.close(); return; }
    if (opened) { stream = opened; return; }
    pollFollow(mine);  // no stream on this gateway: read new lines every 2 s
  }

  async function pollFollow(mine) {
    if (stopped || mine !== generation || follow.getAttribute("aria-pressed") !== "true") return;
    complete = false;
    await loadToEnd();
    pollTimer = setTimeout(() => pollFollow(mine), 2000);
  }

  function showEnd(data) {
    if (!data) return;
    let text;
    if (data.instance) text = `${data.instance} ended: ${data.phase || ""} exit code ${data.exit_code ?? "unknown"}${data.reason ? ` (${data.reason})` : ""}.`;
    else text = `The job ${data.status || "ended"}.`;
    ended.textContent = text;
    ended.hidden = false;
  }

  function stopFollow() {
    follow.setAttribute("aria-pressed", "false");
    follow.textContent = "Follow";
    clearTimeout(pollTimer);
    if (stream) { stream.close(); stream = null; }
  }

  function reset() {
    generation += 1;
    const wasFollowing = follow.getAttribute("aria-pressed") === "true";
    stopFollow();
    lines = [];
    view = null;
    complete = false;
    loading = null;
    error.hidden = true;
    ended.hidden = true;
    list.setCount(0);
    loadMore(pageSize);
    if (wasFollowing) startFollow();
  }

  follow.addEventListener("click", () => {
    if (follow.getAttribute("aria-pressed") === "true") stopFollow();
    else startFollow();
  });
  toEnd.addEventListener("click", async () => { await loadToEnd(); list.scrollToEnd(); });
  date.addEventListener("change", reset);
  allDays.addEventListener("change", () => { date.disabled = allDays.checked; reset(); });
  which.addEventListener("change", () => {
    location.hash = which.value ? `${path}/logs/${encodeURIComponent(which.value)}` : `${path}/logs`;
  });
  let typing = null;
  filter.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => applyFilter(), 150); });

  download.addEventListener("click", async () => {
    download.disabled = true;
    try {
      const day = dayQuery();
      const all = [];
      for (;;) {
        const page = await api.logs(job, instance, { date: day, from: all.length, size: bigPage });
        all.push(...page.lines);
        if (page.lines.length < bigPage && !page.truncated) break;
      }
      const blob = new Blob([all.join("\n") + (all.length ? "\n" : "")], { type: "text/plain" });
      const link = h("a", { href: URL.createObjectURL(blob), download: `${job}${instance ? `-${instance}` : ""}-${day || "all"}.log` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      toast(`Downloaded ${all.length.toLocaleString("en")} lines.`);
    } catch (err) {
      fail(err);
    } finally {
      download.disabled = false;
    }
  });

  // the instance list for the picker (a job's instances extension)
  api.instances(job).then((body) => {
    for (const inst of body.instances || []) {
      if (inst.name !== instance) which.append(h("option", { value: inst.name, text: inst.name }));
    }
  }).catch((err) => { if (err instanceof ApiError && err.status === 401) ctx.onAuthError(); });

  loadMore(pageSize);
  return () => { stopped = true; generation += 1; stopFollow(); list.destroy(); };
}
