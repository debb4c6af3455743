// DOM helpers and formatting shared by the dashboard's views. Every piece of data reaches the
// page through textContent or attributes, never as markup.

export const $ = (id) => document.getElementById(id);

/** h("td", {class: "num", title: "x"}, "text", childNode): a DOM element, text-only. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// ---- messages ---------------------------------------------------------------------------

export function say(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = "message" + (kind ? " " + kind : "");
}

export function failed(err) {
  say(err.message || String(err), "error");
}

/** A button that just disabled itself would drop keyboard focus to the page: move it on. */
export function keepFocus(fallbackId) {
  const active = document.activeElement;
  if (!active || active === document.body || active.disabled) $(fallbackId).focus();
}

// ---- time and numbers -------------------------------------------------------------------

let today = "";

/** The workspace clock's current day: instants on it are shown as a time only. */
export function setToday(isoNow) {
  today = (isoNow || "").slice(0, 10);
}

export function clockText(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "").replace(/Z$/, "") + " UTC" : "";
}

export function shortTime(iso) {
  if (!iso) return "";
  const time = iso.slice(11, 19);
  return iso.slice(0, 10) === today ? time : iso.slice(0, 10) + " " + time;
}

export function timeCell(iso) {
  return h("td", { class: "time" },
    iso ? h("time", { datetime: iso, title: iso, text: shortTime(iso) }) : "\u2014");
}

export const number = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "\u2014");

// ---- jobs -------------------------------------------------------------------------------

export function percent(job) {
  if (job.total > 0) return Math.min(100, Math.floor((100 * job.processed) / job.total));
  return job.status === "completed" ? 100 : 0;
}

/** The badge shows the vendor's status name; data-status keeps the generic one. */
export function statusBadge(job) {
  const generic = job.status;
  const title = job.vendorStatus === generic ? null : `generic status: ${generic}`;
  return h("span", { class: `badge status-${generic}`, "data-status": generic, title },
    job.vendorStatus);
}

export function progressBar(job, label) {
  const pct = percent(job);
  const fill = h("span", { class: `fill status-${job.status}` });
  fill.style.width = pct + "%";  // CSSOM, which the page's Content-Security-Policy allows
  const total = job.total > 0 ? ` \u00b7 ${number(job.processed)}/${number(job.total)}` : "";
  return h("div", { class: "progress" },
    h("div", {
      class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
      "aria-valuenow": pct, "aria-label": label,
    }, fill),
    h("span", { class: "pct", text: `${pct}%${total}` }));
}
