// The import-sandbox dashboard (entry module): picks a workspace, polls the control API once a
// second while the tab is visible, renders the clock and lists here and the jobs and journal
// through their modules, and wires the controls. Plain browser modules: no build step,
// nothing loaded from elsewhere.

import { api, auth, setBase } from "./api.js";
import {
  $, clockText, failed, h, keepFocus, number, say, setToday,
} from "./dom.js";
import {
  clearJobs, closeJob, fetchSelected, forceJob, initJobs, jobsQuery, renderJobDetail,
  renderJobs, renderVendorTabs, selectJob,
} from "./jobs.js";
import {
  fetchJournal, initJournal, renderJournal, renderWebhooks, resetJournal,
} from "./journal.js";

const CONFIG = JSON.parse($("sandbox-config").textContent);
const POLL_MS = 1000;
const VENDORS = new Map(CONFIG.vendors.map((v) => [v.name, v]));

const state = {
  workspace: null,
  info: null,
  vendor: "",
  status: "",
  pageSize: 50,
  cursors: [null],       // the cursor of every page visited so far; the last is shown
  nextCursor: null,
  pageCount: 0,
  selected: null,        // {id, vendor}
  journal: [],           // request entries, oldest first
  webhooks: [],          // webhook attempts, oldest first
  journalCursor: null,
  journalFetched: 0,
  journalDirty: true,
  onlyRejected: false,
  generation: 0,         // bumped when the workspace changes: stale answers are dropped
};

const enc = encodeURIComponent;
const wsPath = (suffix) => `/workspaces/${enc(state.workspace)}${suffix || ""}`;

// ---- workspace picker -------------------------------------------------------------------

async function refreshPicker() {
  const rows = (await api("GET", "/workspaces?limit=100")).data;
  $("workspace-options").replaceChildren(...rows.map((w) => h("option", { value: w.id })));
  if (state.workspace) return;
  $("picker-rows").replaceChildren(...rows.map((w) => h("tr", {},
    h("td", {}, h("button", {
      type: "button", class: "link mono", "aria-label": `Open workspace ${w.id}`,
      onclick: () => openWorkspace(w.id),
    }, w.id)),
    h("td", { class: "mono" }, clockText(w.clock.now), " ",
      h("span", { class: "badge", text: w.clock.frozen ? "frozen" : `\u00d7${w.clock.speed}` })),
    h("td", { class: "mono" }, clockText(w.lastSeenAt)))));
  $("picker-empty").hidden = rows.length > 0;
}

function showPicker() {
  state.workspace = null;
  state.generation += 1;
  $("workspace-view").hidden = true;
  $("picker").hidden = false;
  history.replaceState(null, "", location.pathname);
  document.title = "import-sandbox dashboard";
  refreshSoon();
  $("picker-title").focus();
}

function openWorkspace(key) {
  key = (key || "").trim();
  if (!key) return;
  state.workspace = key;
  state.generation += 1;
  Object.assign(state, { info: null, cursors: [null], nextCursor: null, selected: null });
  resetJournal();
  clearJobs();
  $("workspace-input").value = key;
  $("ws-name").textContent = key;
  $("picker").hidden = true;
  $("workspace-view").hidden = false;
  $("job-detail").hidden = true;
  history.replaceState(null, "", "#ws=" + enc(key));
  document.title = `${key} \u00b7 import-sandbox dashboard`;
  say(`Workspace ${key} opened.`);
  refreshSoon();
}

// ---- one refresh of everything shown ----------------------------------------------------

let inFlight = null;
let again = false;

/** Refresh now, or right after the refresh in progress (never two at once). */
function refreshSoon() {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    try {
      do {
        again = false;
        await refresh();
      } while (again);
    } catch (err) {
      failed(err);
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

async function refresh() {
  if (!state.workspace) {
    await refreshPicker();
    return;
  }
  const generation = state.generation;
  const fetchedBefore = state.journalFetched;
  // The workspace first: its journal count tells whether the journal was emptied since.
  const info = await api("GET", wsPath());
  if (generation !== state.generation) return;
  if (info.journalEntries < fetchedBefore) resetJournal();
  const [page, , job] = await Promise.all([
    api("GET", wsPath("/jobs?" + jobsQuery())),
    fetchJournal(generation),
    state.selected ? fetchSelected() : Promise.resolve(null),
  ]);
  if (generation !== state.generation) return;
  state.info = info;
  state.nextCursor = page.nextCursor;
  setToday(info.clock.now);
  renderClock(info.clock);
  renderLists(info.lists);
  renderVendorTabs(info.jobs);
  renderJobs(page.data);
  renderJournal();
  renderWebhooks();
  if (state.selected) renderJobDetail(job);
}

// ---- clock ------------------------------------------------------------------------------

function renderClock(clock) {
  const now = $("clock-now");
  now.textContent = clockText(clock.now);
  now.setAttribute("datetime", clock.now);
  const badge = $("clock-state");
  badge.textContent = clock.frozen ? "frozen" : `running \u00d7${clock.speed}`;
  badge.className = "badge " + (clock.frozen ? "clock-frozen" : "clock-running");
  $("clock-freeze").disabled = clock.frozen;
  $("clock-resume").disabled = !clock.frozen;
  const speed = $("speed-input");
  if (document.activeElement !== speed) speed.value = String(clock.speed);
}

async function clockAction(method, path, body, done) {
  try {
    say(done(await api(method, wsPath(path), body)));
  } catch (err) {
    failed(err);
  }
  await refreshSoon();
  keepFocus($("clock-freeze").disabled ? "clock-resume" : "clock-freeze");
}

// ---- lists ------------------------------------------------------------------------------

let listsShown = "";

function renderLists(lists) {
  const signature = JSON.stringify(lists);
  if (signature === listsShown) return;
  listsShown = signature;
  const rows = [];
  for (const vendor of CONFIG.vendors) {
    for (const list of lists[vendor.name] || []) {
      rows.push(h("tr", {},
        h("td", { text: vendor.title }),
        h("td", {}, h("span", { text: list.name }), " ",
          h("span", { class: "muted small mono", text: `${list.kind} ${list.id}` })),
        h("td", { class: "num", text: number(list.leadCount) })));
    }
  }
  if (!rows.length) {
    rows.push(h("tr", {}, h("td", { colspan: 3, class: "muted", text: "No list." })));
  }
  $("lists-rows").replaceChildren(...rows);
}

// ---- wiring -----------------------------------------------------------------------------

function on(id, event, handler) {
  $(id).addEventListener(event, handler);
}

function onSubmit(id, handler) {
  on(id, "submit", (ev) => {
    ev.preventDefault();
    handler();
  });
}

function newPage(change) {
  change();
  refreshSoon();
}

function setUp() {
  setBase(CONFIG.apiBase);
  initJobs({ config: CONFIG, vendors: VENDORS, state, wsPath, refreshSoon });
  initJournal({ vendors: VENDORS, state, wsPath });
  auth.onUnauthorized = (message) => {
    $("token-form").hidden = false;
    say(message + ": enter the control token (the server's --control-token).", "error");
  };

  $("version").textContent = CONFIG.version;
  $("control-docs").href = CONFIG.controlDocs;
  $("docs-links").replaceChildren(...CONFIG.vendors.map((v) => h("li", {},
    h("a", { href: v.docs, text: v.title, title: `${v.title} API (sandbox at ${v.prefix})` }))),
  h("li", {}, h("a", { href: CONFIG.controlDocs, text: "Control API" })));
  for (const s of CONFIG.statuses) $("status-filter").append(h("option", { value: s, text: s }));
  $("token-form").hidden = !CONFIG.tokenRequired;
  $("token-input").value = auth.token;
  $("job-title").setAttribute("tabindex", "-1");
  $("picker-title").setAttribute("tabindex", "-1");

  onSubmit("workspace-form", () => openWorkspace($("workspace-input").value));
  on("show-picker", "click", showPicker);
  onSubmit("token-form", () => {
    auth.remember($("token-input").value.trim());
    say(auth.token ? "Token set for this tab." : "Token cleared.");
    refreshSoon();
  });

  on("clock-freeze", "click", () =>
    clockAction("POST", "/clock/freeze", undefined, () => "Clock frozen."));
  on("clock-resume", "click", () =>
    clockAction("POST", "/clock/resume", undefined, () => "Clock running again."));
  onSubmit("advance-form", () => {
    const seconds = Number($("advance-amount").value) * Number($("advance-unit").value);
    clockAction("POST", "/clock/advance", { seconds },
      (c) => `Clock advanced by ${number(seconds)} s, now ${clockText(c.now)}.`);
  });
  onSubmit("speed-form", () => {
    clockAction("PUT", "/clock/speed", { speed: Number($("speed-input").value) },
      (c) => `Clock speed set to \u00d7${c.speed}.`);
  });

  on("status-filter", "change", (ev) => newPage(() => {
    state.status = ev.target.value;
    state.cursors = [null];
  }));
  on("page-size", "change", (ev) => newPage(() => {
    state.pageSize = Number(ev.target.value);
    state.cursors = [null];
  }));
  on("page-first", "click", () => newPage(() => { state.cursors = [null]; }));
  on("page-prev", "click", () => newPage(() => {
    if (state.cursors.length > 1) state.cursors.pop();
  }));
  on("page-next", "click", () => newPage(() => {
    if (state.nextCursor) state.cursors.push(state.nextCursor);
  }));
  onSubmit("find-form", async () => {
    try {
      selectJob(await api("GET", wsPath(`/jobs/${enc($("find-input").value.trim())}`)));
      $("job-title").focus();
    } catch (err) {
      failed(err);
    }
  });

  on("job-pause", "click", () => forceJob("paused"));
  on("job-resume", "click", () => forceJob("running"));
  on("job-complete", "click", () => forceJob("completed"));
  onSubmit("fail-form", () => forceJob("failed", $("fail-message").value.trim()));
  on("job-close", "click", closeJob);
  on("only-rejected", "change", (ev) => {
    state.onlyRejected = ev.target.checked;
    renderJournal();
  });

  const fromHash = new URLSearchParams(location.hash.slice(1)).get("ws");
  if (fromHash) openWorkspace(fromHash);
  else refreshSoon();
  poll();
}

function poll() {
  setTimeout(async () => {
    if (!document.hidden) await refreshSoon();
    poll();
  }, POLL_MS);
}

setUp();
