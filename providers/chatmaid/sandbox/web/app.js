// The inbox page: polls the admin API's change feed and redraws only what changed.

import { admin } from "./api.js";
import { conversations } from "./conversations.js";
import { details } from "./details.js";
import { h } from "./dom.js";
import { stage } from "./stage.js";
import { Store } from "./store.js";
import { webhooks } from "./webhooks.js";

const POLL_MS = 500; // between polls; longer when a poll is slow or the page is hidden
const HIDDEN_POLL_MS = 5000;
const VIEWS = ["conversations", "webhooks", "stage"];

const store = new Store();
const ctx = { store, act, toast, reveal, sample: null };
ctx.conversations = conversations(ctx);
ctx.details = details(ctx);
const views = { conversations: ctx.conversations, webhooks: webhooks(ctx), stage: stage(ctx) };
const dirty = new Set();
let current = "conversations";
let timer = null;
let polling = false;
let again = false;

/** Run an admin action; toast what happened, then poll at once so its effect shows. */
async function act(label, call) {
  try {
    const result = await call();
    toast(`${label}: done`);
    refresh();
    return result ?? true;
  } catch (error) {
    toast(`${label} refused: ${error.message}`, true);
    return null;
  }
}

function toast(text, bad = false) {
  const box = document.getElementById("toasts");
  const item = h("p", { class: bad ? "toast bad" : "toast" }, text);
  box.append(item);
  setTimeout(() => item.remove(), bad ? 8000 : 4000);
}

function refresh() {
  if (polling) again = true;
  else poll();
}

async function poll() {
  clearTimeout(timer);
  polling = true;
  const started = performance.now();
  try {
    const epoch = store.epoch ? `&epoch=${encodeURIComponent(store.epoch)}` : "";
    const feed = await admin("GET", `/events?since=${store.seq}${epoch}`);
    draw(store.apply(feed));
    setOnline(true);
  } catch (error) {
    setOnline(false, error.message);
  }
  polling = false;
  const spent = performance.now() - started;
  const wait = document.hidden ? HIDDEN_POLL_MS : Math.max(POLL_MS, spent * 3);
  if (again) {
    again = false;
    poll();
  } else {
    timer = setTimeout(poll, wait);
  }
}

function draw(changed) {
  const nothing = !changed.full && !changed.stage && !changed.threads.size && !changed.deliveries.size;
  if (nothing) return;
  for (const name of VIEWS) {
    if (name === current) views[name].render(changed);
    else if (changed.full || changed.stage || changed.threads.size || changed.deliveries.size) dirty.add(name);
  }
  ctx.details.render(changed);
  const failed = views.webhooks.failedCount();
  document.getElementById("failed-count").textContent = failed ? `${failed} failed` : "";
  document.getElementById("profile").textContent = `${store.stage.settings.profile} profile`;
  document.body.dataset.ready = "true";
  document.body.dataset.seq = String(store.seq);
}

function setOnline(online, why = "") {
  const status = document.getElementById("online");
  status.textContent = online ? "● updating" : `sandbox not answering (${why}); retrying`;
  status.className = online ? "online" : "offline";
}

/** Show a message or reply in its conversation, with its details. */
function reveal(id) {
  show("conversations");
  ctx.conversations.reveal(id);
}

function show(name) {
  current = name;
  for (const view of VIEWS) {
    document.getElementById(`view-${view}`).hidden = view !== name;
    document.getElementById(`tab-${view}`).setAttribute("aria-selected", String(view === name));
  }
  if (dirty.delete(name) && store.stage) views[name].render({ full: true });
}

async function loadSample() {
  // The curl line of the empty state: the sandbox's own seed test key and a connected phone.
  try {
    const keys = await admin("GET", "/api-keys");
    const phones = await admin("GET", "/phones");
    const key = keys.find((k) => k.environment === "test" && !k.expired && k.scopes.includes("messages:send"));
    const phone = phones.find((p) => p.connectionStatus === "connected");
    if (key && phone) ctx.sample = { origin: location.origin, key: key.key, phoneId: phone.id };
  } catch {
    ctx.sample = null;
  }
}

function keyboard(event) {
  const typing = event.target.closest("input, textarea, select");
  if (event.key === "Escape") {
    if (ctx.details.isOpen()) ctx.details.close();
    else if (typing) event.target.blur();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    event.preventDefault();
    show("conversations");
    ctx.conversations.focusSearch();
  } else if (["1", "2", "3"].includes(event.key)) {
    show(VIEWS[Number(event.key) - 1]);
  }
}

/** The tabs' arrow keys (the ARIA tabs pattern): the next or previous view. */
function tabKeys(event) {
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (!step) return;
  const next = VIEWS[(VIEWS.indexOf(current) + step + VIEWS.length) % VIEWS.length];
  show(next);
  document.getElementById(`tab-${next}`).focus();
}

for (const name of VIEWS) document.getElementById(`tab-${name}`).addEventListener("click", () => show(name));
document.querySelector("[role=tablist]").addEventListener("keydown", tabKeys);
document.addEventListener("keydown", keyboard);
document.addEventListener("visibilitychange", () => document.hidden || refresh());
loadSample().then(poll);
