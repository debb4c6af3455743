// The jobs view: vendor tabs, one page of jobs (the control API pages them, so a workspace of
// 10,000 jobs costs one page of rows), and the panel that forces a job's status.

import { api } from "./api.js";
import {
  $, clockText, failed, h, keepFocus, number, progressBar, say, statusBadge, timeCell,
} from "./dom.js";

let ctx = null;  // {config, vendors, state, wsPath, refreshSoon}
const rows = new Map();  // "vendor/id" -> <tr>, kept across polls (focus stays put)

export function initJobs(context) {
  ctx = context;
}

const enc = encodeURIComponent;

function vendorTitle(name) {
  return ctx.vendors.has(name) ? ctx.vendors.get(name).title : name || "";
}

function skippedOf(counts) {
  return (counts.skipped || 0) + (counts.unchanged || 0) + (counts.blocked || 0) +
    (counts.updated || 0);
}

export function jobsQuery() {
  const { state } = ctx;
  const q = new URLSearchParams({ limit: String(state.pageSize) });
  if (state.vendor) q.set("vendor", state.vendor);
  if (state.status) q.set("status", state.status);
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

export function renderVendorTabs(counts) {
  const { state, config } = ctx;
  const tabs = $("vendor-tabs");
  const all = Object.values(counts).reduce((sum, c) => sum + c.total, 0);
  const entries = [["", "All", all]].concat(
    config.vendors.map((v) => [v.name, v.title, (counts[v.name] || { total: 0 }).total]));
  if (tabs.children.length !== entries.length) {
    tabs.replaceChildren(...entries.map(([name]) => h("button", {
      type: "button", "data-vendor": name, onclick: () => chooseVendor(name),
    })));
  }
  entries.forEach(([name, title, n], i) => {
    const button = tabs.children[i];
    button.textContent = `${title} (${number(n)})`;
    button.setAttribute("aria-pressed", String(state.vendor === name));
  });
  const total = state.vendor ? (counts[state.vendor] || { total: 0 }).total : all;
  $("jobs-total").textContent = `(${number(total)})`;
  // Counts are by the vendors' status names, which do not map back onto one generic status.
  state.pageCount = state.status ? null : total;
}

function chooseVendor(name) {
  ctx.state.vendor = name;
  ctx.state.cursors = [null];
  ctx.refreshSoon();
}

export function clearJobs() {
  rows.clear();
  $("jobs-rows").replaceChildren();
}

export function renderJobs(jobs) {
  const body = $("jobs-rows");
  const keep = new Set();
  jobs.forEach((job, i) => {
    const key = `${job.vendor}/${job.id}`;
    keep.add(key);
    let row = rows.get(key);
    if (!row) {
      row = h("tr", { "data-job": job.id, "data-vendor": job.vendor });
      rows.set(key, row);
    }
    fillJobRow(row, job);
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  for (const [key, row] of rows) {
    if (!keep.has(key)) {
      row.remove();
      rows.delete(key);
    }
  }
  $("jobs-empty").hidden = jobs.length > 0;
  renderPager(jobs.length);
}

function fillJobRow(row, job) {
  const { state } = ctx;
  const signature = JSON.stringify(job) + (state.info ? state.info.clock.now.slice(0, 10) : "");
  if (row.dataset.signature === signature) return;
  row.dataset.signature = signature;
  const selected = state.selected && state.selected.id === job.id &&
    state.selected.vendor === job.vendor;
  row.classList.toggle("selected", Boolean(selected));
  const c = job.counts;
  const focused = row.contains(document.activeElement);
  row.replaceChildren(
    h("td", {}, h("button", {
      type: "button", class: "link mono", "aria-label": `Show job ${job.id}`,
      onclick: () => selectJob(job),
    }, job.id)),
    h("td", { text: vendorTitle(job.vendor) }),
    h("td", { title: job.list ? `${job.list.kind} ${job.list.id}` : null,
      text: job.list ? job.list.name : "\u2014" }),
    h("td", {}, statusBadge(job)),
    h("td", {}, progressBar(job, `Progress of job ${job.id}`)),
    h("td", { class: "num", text: number(c.added) }),
    h("td", { class: "num", text: number(skippedOf(c)),
      title: `skipped ${c.skipped || 0}, unchanged ${c.unchanged || 0}, ` +
        `updated ${c.updated || 0}, blocked ${c.blocked || 0}` }),
    h("td", { class: "num" + (c.failed ? " bad" : ""), text: number(c.failed) }),
    timeCell(job.createdAt), timeCell(job.updatedAt), timeCell(job.completedAt));
  if (focused) row.querySelector("button").focus();
}

function renderPager(shown) {
  const { state } = ctx;
  const index = state.cursors.length - 1;
  const first = index * state.pageSize + 1;
  const total = state.pageCount;
  let text = shown ? `Jobs ${number(first)}\u2013${number(first + shown - 1)}` : "No jobs";
  if (typeof total === "number") text += ` of ${number(total)}`;
  text += ` \u00b7 page ${index + 1}`;
  if (typeof total === "number" && total > 0) {
    text += ` of ${number(Math.ceil(total / state.pageSize))}`;
  }
  $("page-info").textContent = text;
  $("page-first").disabled = index === 0;
  $("page-prev").disabled = index === 0;
  $("page-next").disabled = !state.nextCursor;
}

// ---- one job --------------------------------------------------------------------------

export async function fetchSelected() {
  const { id, vendor } = ctx.state.selected;
  try {
    return await api("GET", ctx.wsPath(`/jobs/${enc(id)}?vendor=${enc(vendor)}`));
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

export function selectJob(job) {
  ctx.state.selected = { id: job.id, vendor: job.vendor };
  for (const row of rows.values()) {
    row.classList.toggle("selected",
      row.dataset.job === job.id && row.dataset.vendor === job.vendor);
  }
  renderJobDetail(job);
  $("job-detail").hidden = false;
  ctx.refreshSoon();
}

export function closeJob() {
  ctx.state.selected = null;
  $("job-detail").hidden = true;
  for (const row of rows.values()) row.classList.remove("selected");
}

export function renderJobDetail(job) {
  if (!job) {
    closeJob();
    return;
  }
  $("job-id").textContent = job.id;
  const c = job.counts;
  const clock = (iso, none) => clockText(iso) || none;
  const facts = [
    ["Vendor", vendorTitle(job.vendor)],
    ["List", job.list ? `${job.list.name} (${job.list.kind} ${job.list.id})` : "\u2014"],
    ["Kind", job.kind],
    ["Status", statusBadge(job)],
    ["Progress", progressBar(job, `Progress of job ${job.id} (detail)`)],
    ["Counts", Object.keys(c).map((k) => `${k.replace("_", " ")} ${number(c[k])}`).join(", ")],
    ["Error", job.error || "\u2014"],
    ["Created", clock(job.createdAt, "\u2014")],
    ["Updated", clock(job.updatedAt, "\u2014")],
    ["Finished", clock(job.completedAt, "\u2014")],
    ["Next change", clock(job.nextChangeAt, "none (waits for a control)")],
    ["Can be forced to", job.legalTransitions.join(", ") || "nothing (final)"],
  ];
  $("job-facts").replaceChildren(
    ...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
  $("job-view").textContent = JSON.stringify(job.view, null, 2);
  const legal = ctx.config.transitions[job.status] || [];
  $("job-pause").disabled = !legal.includes("paused");
  $("job-resume").disabled = !(job.status === "paused" && legal.includes("running"));
  $("job-complete").disabled = !legal.includes("completed");
  $("job-fail").disabled = !legal.includes("failed");
  $("fail-message").disabled = !legal.includes("failed");
}

/** Force the selected job to a generic status, named as its vendor names it. */
export async function forceJob(generic, error) {
  const { state } = ctx;
  if (!state.selected) return;
  const { id, vendor } = state.selected;
  const names = (ctx.vendors.get(vendor) || { statusNames: {} }).statusNames;
  const body = { to: names[generic] || generic };
  if (error) body.error = error;
  try {
    const path = ctx.wsPath(`/jobs/${enc(id)}/transition?vendor=${enc(vendor)}`);
    const job = await api("POST", path, body);
    say(`Job ${id} is now ${job.vendorStatus}.`);
  } catch (err) {
    failed(err);
  }
  await ctx.refreshSoon();
  keepFocus("job-title");
}
