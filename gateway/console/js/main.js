// The console's shell: configuration from the page's <meta>, the session, the header, and a hash router
// (#/jobs, #/jobs/NAME, #/jobs/NAME/logs[/INSTANCE], #/create, #/signin), so the gateway serves one page only.

import { Api, ApiError, clearSession, saveSession, session } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { mountJobs } from "./jobs.js";
import { mountJob } from "./job.js";
import { mountLogs } from "./logs.js";
import { mountCreate } from "./create.js";

const config = JSON.parse(document.querySelector('meta[name="tenx-console"]').content);
const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return "Wrong user name or token.";
    if (err.status === 429) return "Too many failed sign-ins from here; wait a minute and try again.";
    return `${err.status}: ${err.message}`;
  }
  return "The gateway cannot be reached.";
}

function renderNav(current) {
  clear(nav);
  const s = session();
  if (!s) return;
  const link = (href, text) => h("a", { href, text, "aria-current": current === href ? "page" : null });
  const signOut = h("button", { type: "button", class: "button link", text: "Sign out", id: "sign-out" });
  signOut.addEventListener("click", () => {
    clearSession();
    location.hash = "#/signin";
  });
  nav.append(link("#/jobs", "Jobs"), link("#/create", "New job"),
    h("span", { class: "who", text: `${s.user} · ${s.region}` }), signOut);
}

function signIn(root) {
  const regions = config.regions.length ? config.regions : ["us"];
  const error = h("p", { class: "error", role: "alert", id: "signin-error", hidden: true });
  const user = h("input", { id: "signin-user", name: "username", autocomplete: "username", required: true, spellcheck: "false" });
  const token = h("input", { id: "signin-token", name: "token", type: "password", autocomplete: "current-password", required: true });
  const region = h("select", { id: "signin-region", name: "region" }, regions.map((r) => h("option", { value: r, text: r })));
  const submit = h("button", { type: "submit", class: "button primary", text: "Sign in" });
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", text: "Sign in" }),
    h("p", { class: "muted", text: "Your tenx-gateway user name and token, as for the API. The token stays in this tab only." }),
    h("label", { for: "signin-user", text: "User name" }), user,
    h("label", { for: "signin-token", text: "Token" }), token,
    regions.length > 1 ? [h("label", { for: "signin-region", text: "Region" }), region] : null,
    error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    const credentials = { user: user.value.trim(), token: token.value.trim(), region: region.value || regions[0] };
    try {
      await new Api(credentials).check();
      saveSession(credentials);
      token.value = "";
      location.hash = "#/jobs";
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
      token.focus();
    } finally {
      submit.disabled = false;
    }
  });
  root.append(form);
  user.focus();
  return null;
}

function route() {
  if (cleanup) { try { cleanup(); } catch (err) { /* a page's teardown never blocks the next page */ } }
  cleanup = null;
  clear(main);
  const hash = location.hash || "#/jobs";
  const parts = hash.replace(/^#\/?/, "").split("/").map((p) => decodeURIComponent(p));
  const s = session();
  if (!s || parts[0] === "signin") {
    if (s && parts[0] === "signin") { location.hash = "#/jobs"; return; }
    renderNav(null);
    document.title = "Sign in · tenx console";
    cleanup = signIn(main);
    return;
  }
  const ctx = { api: new Api(s), config, session: s, onAuthError: () => { clearSession(); toast("Your token was refused; sign in again.", "error"); location.hash = "#/signin"; } };
  if (parts[0] === "create") {
    renderNav("#/create");
    document.title = "New job · tenx console";
    cleanup = mountCreate(main, ctx);
  } else if (parts[0] === "jobs" && parts[1] && parts[2] === "logs") {
    renderNav(null);
    document.title = `Logs of ${parts[1]} · tenx console`;
    cleanup = mountLogs(main, ctx, parts[1], parts[3] || "");
  } else if (parts[0] === "jobs" && parts[1]) {
    renderNav(null);
    document.title = `${parts[1]} · tenx console`;
    cleanup = mountJob(main, ctx, parts[1]);
  } else {
    renderNav("#/jobs");
    document.title = "Jobs · tenx console";
    cleanup = mountJobs(main, ctx);
  }
  main.focus({ preventScroll: true });
}

// the skip link moves focus without touching the hash, which is the router's
document.querySelector(".skip").addEventListener("click", (event) => { event.preventDefault(); main.focus(); });
window.addEventListener("hashchange", route);
route();
document.documentElement.dataset.ready = "true";
