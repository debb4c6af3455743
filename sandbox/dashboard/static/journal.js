// The journal views: recent requests (rejected ones highlighted, with their violations) and
// webhook deliveries with their attempts. The journal pages oldest first, so the page keeps a
// cursor and fetches only what is new at each poll.

import { api } from "./api.js";
import { $, h, shortTime } from "./dom.js";

const SHOWN = 100;          // entries on screen
const KEPT = 500;           // entries held in memory (the filter picks from these)
const PAGES_PER_TICK = 5;   // at 1000 entries a page

let ctx = null;  // {state, vendors, wsPath}
let webhooksDirty = true;
let filterShown = null;

export function initJournal(context) {
  ctx = context;
}

export function resetJournal() {
  Object.assign(ctx.state, { journal: [], webhooks: [], journalCursor: null,
    journalFetched: 0, journalDirty: true });
  webhooksDirty = true;
  $("journal-rows").replaceChildren();
  $("webhook-rows").replaceChildren();
}

/** New entries since the last one seen; `generation` drops answers for another workspace. */
export async function fetchJournal(generation) {
  const { state } = ctx;
  for (let i = 0; i < PAGES_PER_TICK; i++) {
    const q = new URLSearchParams({ limit: "1000" });
    if (state.journalCursor) q.set("cursor", state.journalCursor);
    const page = await api("GET", ctx.wsPath("/requests?" + q.toString()));
    if (generation !== state.generation) return;
    for (const entry of page.data) {
      (entry.kind === "webhook" ? state.webhooks : state.journal).push(entry);
    }
    state.journalFetched += page.data.length;
    if (page.data.length) {
      state.journalCursor = String(page.data[page.data.length - 1].seq);
      state.journalDirty = true;
    }
    for (const kept of [state.journal, state.webhooks]) {
      if (kept.length > KEPT) kept.splice(0, kept.length - KEPT);
    }
    if (!page.nextCursor) return;
  }
}

const isRejected = (entry) => entry.status !== null && entry.status >= 400;

function vendorTitle(name) {
  return ctx.vendors.has(name) ? ctx.vendors.get(name).title : name || "";
}

function entryItem(entry) {
  const rejected = isRejected(entry);
  const target = entry.path + (entry.query ? "?" + entry.query : "");
  const li = h("li", { class: "entry" + (rejected ? " rejected" : ""), "data-seq": entry.seq },
    h("div", { class: "line" },
      h("time", { class: "mono muted", datetime: entry.at, title: entry.at,
        text: shortTime(entry.at) }),
      h("span", { class: "vendor", text: vendorTitle(entry.vendor) }),
      h("span", { class: "mono method", text: entry.method || "" }),
      h("span", { class: "mono path", text: target }),
      h("span", { class: "badge " + (rejected ? "http-bad" : "http-ok"),
        text: String(entry.status) }),
      rejected ? h("strong", { class: "rejected-label", text: "rejected" }) : null,
      entry.operationId ? h("span", { class: "muted small", text: entry.operationId }) : null));
  if (rejected && entry.errors.length) {
    li.append(h("ul", { class: "violations", "aria-label": "Violations" },
      entry.errors.map((e) => h("li", { class: "violation" },
        e.field ? h("code", { text: e.field }) : null,
        e.field ? " " : null,
        h("span", { text: e.message || e.code || "rejected" }),
        e.rule ? h("span", { class: "muted small", text: ` (rule: ${e.rule})` }) : null))));
  }
  if (entry.body) {
    li.append(h("details", {}, h("summary", { text: "Request body" }),
      h("pre", { class: "code", text: entry.body })));
  }
  return li;
}

export function renderJournal() {
  const { state } = ctx;
  if (!state.journalDirty && filterShown === state.onlyRejected) return;
  const list = $("journal-rows");
  const wanted = state.journal.filter((e) => !state.onlyRejected || isRejected(e))
    .slice(-SHOWN).reverse();
  // Keep the elements already shown (an open <details> stays open), add the new ones.
  const shown = new Map([...list.children].map((li) => [li.dataset.seq, li]));
  const items = wanted.map((e) => shown.get(String(e.seq)) || entryItem(e));
  items.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
  const empty = $("journal-empty");
  empty.hidden = items.length > 0;
  empty.textContent = state.onlyRejected ? "No rejected request." : "No request yet.";
  filterShown = state.onlyRejected;
  webhooksDirty = webhooksDirty || state.journalDirty;
  state.journalDirty = false;
}

export function renderWebhooks() {
  if (!webhooksDirty) return;
  webhooksDirty = false;
  // One delivery = one event sent to one URL; each of its attempts is a journal entry.
  const groups = new Map();
  for (const a of ctx.state.webhooks) {
    let eventId = "";
    try { eventId = JSON.parse(a.body || "{}").id || ""; } catch (_) { eventId = ""; }
    const key = `${a.path} ${eventId || a.detail.delivery_id}`;
    if (!groups.has(key)) groups.set(key, { url: a.path, event: a.detail.event, attempts: [] });
    groups.get(key).attempts.push(a);
  }
  const items = [...groups.values()].reverse().slice(0, SHOWN).map((g) => {
    const stateName = g.attempts[g.attempts.length - 1].detail.state || "pending";
    return h("li", { class: "entry delivery" + (stateName === "failed" ? " rejected" : "") },
      h("div", { class: "line" },
        h("span", { class: "badge delivery-" + stateName, text: stateName }),
        h("strong", { text: g.event || "event" }),
        h("span", { class: "mono path", text: g.url })),
      h("ol", { class: "attempts", "aria-label": "Attempts" }, g.attempts.map(attemptItem)));
  });
  $("webhook-rows").replaceChildren(...items);
  $("webhooks-empty").hidden = items.length > 0;
}

function attemptItem(a) {
  const d = a.detail;
  const ok = d.status_code >= 200 && d.status_code < 300;
  const outcome = d.status_code ? `HTTP ${d.status_code}` : d.error || "no answer";
  return h("li", {},
    h("span", { class: "mono", text: `#${d.attempt} ${shortTime(a.at)}` }), " \u2192 ",
    h("span", { class: ok ? "good" : "bad", text: outcome }),
    d.next_attempt_at ? h("span", { class: "muted small",
      text: ` \u00b7 next attempt ${shortTime(d.next_attempt_at)}` }) : null);
}
