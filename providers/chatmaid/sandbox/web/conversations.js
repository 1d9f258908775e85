// Conversations: one thread per sender phone and other party, WhatsApp-like bubbles.

import { admin } from "./api.js";
import { clock, empty, fill, h, safeUrl } from "./dom.js";
import { isFiltering, matcher, readFilters } from "./filters.js";

const BUBBLES_SHOWN = 200; // the newest of a thread; "show earlier" adds as many again
const THREADS_SHOWN = 200;
const TICKS = { pending: "◷", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "✕" };

export function conversations(ctx) {
  const { store } = ctx;
  const form = document.getElementById("filters");
  const list = document.getElementById("threads");
  const head = document.getElementById("thread-head");
  const bubbles = document.getElementById("bubbles");
  const hint = document.getElementById("send-hint");
  const reply = document.getElementById("reply");
  const cache = new Map(); // entry id -> {key, el}: unchanged bubbles are reused
  let filters = readFilters(form);
  let openKey = null;
  let shown = BUBBLES_SHOWN;
  let selected = null;
  let timer = null;

  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refilter, 120);
  });
  form.addEventListener("reset", () => setTimeout(refilter));
  form.addEventListener("submit", (event) => event.preventDefault());
  reply.addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply();
  });
  list.addEventListener("keydown", (event) => moveFocus(event, list, "button"));
  bubbles.addEventListener("keydown", (event) => moveFocus(event, bubbles, ".bubble"));

  function refilter() {
    filters = readFilters(form);
    shown = BUBBLES_SHOWN;
    render({ full: true });
  }

  function render(changed) {
    if (changed.full) cache.clear();
    if (changed.full || changed.stage) renderSenders();
    renderHint();
    const match = matcher(filters);
    const threads = visibleThreads(match);
    if (!threads.some((t) => t.thread.key === openKey)) openKey = threads[0]?.thread.key ?? null;
    if (changed.full || changed.threads?.size) renderThreads(threads);
    if (changed.full || changed.threads?.has(openKey) || changed.records?.has(selected)) {
      renderThread(match);
    }
  }

  function visibleThreads(match) {
    const threads = [];
    for (const thread of store.threads.values()) {
      const count = isFiltering(filters)
        ? thread.entries.filter((e) => match(e, store.record(e))).length
        : thread.entries.length;
      if (count) threads.push({ thread, count });
    }
    return threads.sort((a, b) => (a.thread.lastAt < b.thread.lastAt ? 1 : -1));
  }

  function renderThreads(threads) {
    if (!threads.length) {
      const clear = h("button", { type: "button", onclick: () => form.reset() }, "Clear filters");
      fill(list, h("li", {}, empty("No message matches these filters.", clear)));
      return;
    }
    const items = threads.slice(0, THREADS_SHOWN).map(({ thread, count }) => {
      const last = store.record(thread.ordered()[thread.entries.length - 1]);
      const failed = thread.entries.some((e) => store.record(e).status === "failed");
      return h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: `thread-item${failed ? " has-failed" : ""}`,
            "aria-current": thread.key === openKey ? "true" : null,
            dataset: { key: thread.key },
            onclick: () => open(thread.key),
          },
          h("span", { class: "peer" }, thread.peer),
          h("span", { class: "count", title: `${count} messages` }, count),
          h("span", { class: "via" }, `with ${thread.phone}`),
          h("span", { class: "preview" }, preview(last)),
          h("time", { class: "when" }, clock(thread.lastAt)),
        ),
      );
    });
    if (threads.length > THREADS_SHOWN) {
      items.push(h("li", { class: "more" }, `${threads.length - THREADS_SHOWN} more: search to narrow`));
    }
    fill(list, items);
  }

  function open(key) {
    openKey = key;
    shown = BUBBLES_SHOWN;
    render({ full: true });
    bubbles.scrollTop = bubbles.scrollHeight;
  }

  function renderThread(match) {
    const thread = store.threads.get(openKey);
    reply.hidden = !thread;
    if (!thread) {
      fill(head);
      fill(bubbles);
      return;
    }
    const phone = store.stage?.phones.find((p) => p.phoneNumber === thread.phone);
    fill(
      head,
      h("h2", {}, thread.peer),
      h("p", {}, `with ${thread.phone}${phone ? ` (${phone.displayName}, ${phone.connectionStatus})` : ""}`),
    );
    reply.elements.content.placeholder = `Reply as ${thread.peer}…`;
    const live = store.stage?.settings.profile === "live";
    reply.querySelector(".note").textContent = live
      ? "fires message.received"
      : "stored; message.received is sent in the live profile only";
    const entries = thread.ordered().filter((e) => match(e, store.record(e)));
    const visible = entries.slice(-shown);
    const nodes = visible.map((entry) => cachedBubble(entry));
    if (entries.length > visible.length) {
      const more = () => {
        shown += BUBBLES_SHOWN;
        renderThread(match);
      };
      nodes.unshift(h("button", { type: "button", class: "earlier", onclick: more }, `Show earlier (${entries.length - visible.length})`));
    }
    const atBottom = bubbles.scrollHeight - bubbles.scrollTop - bubbles.clientHeight < 48;
    const focusedId = document.activeElement?.closest?.(".bubble")?.dataset.id;
    bubbles.replaceChildren(...nodes);
    if (focusedId) bubbles.querySelector(`[data-id="${CSS.escape(focusedId)}"]`)?.focus();
    if (atBottom) bubbles.scrollTop = bubbles.scrollHeight;
  }

  function cachedBubble(entry) {
    const record = store.record(entry);
    const key = `${record.seq}|${record.id === selected}`;
    const hit = cache.get(entry.id);
    if (hit && hit.key === key) return hit.el;
    const el = bubble(entry, record);
    cache.set(entry.id, { key, el });
    return el;
  }

  function bubble(entry, record) {
    const out = entry.kind === "out";
    const status = out ? record.status : "received";
    const at = out ? record.createdAt : record.receivedAt;
    const links = (record.mediaUrls ?? []).map((url) => {
      const href = safeUrl(url);
      return h("li", {}, href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, url) : url);
    });
    const el = h(
      "article",
      {
        class: `bubble ${out ? "out" : "in"} status-${status}${record.id === selected ? " selected" : ""}`,
        tabindex: 0,
        dataset: { id: record.id, status },
        "aria-label": `${out ? "to" : "from"} ${out ? record.to : record.from}, ${status}`,
      },
      record.content === null ? null : h("p", { class: "content" }, record.content),
      links.length ? h("ul", { class: "media" }, links) : null,
      status === "failed" ? h("p", { class: "error" }, `${record.errorCode}: ${record.errorMessage}`) : null,
      h(
        "footer",
        { class: "meta" },
        out
          ? h("span", { class: `badge env-${record.environment}` }, record.environment)
          : h("span", { class: "badge" }, record.type),
        h("time", { datetime: at }, clock(at)),
        out
          ? h("span", { class: `ticks ${status}`, title: status }, h("span", { "aria-hidden": "true" }, TICKS[status] ?? "?"), " ", h("span", { class: "status-text" }, status))
          : null,
      ),
    );
    const show = () => {
      selected = record.id;
      ctx.details.open(entry);
      render({ records: new Set([record.id]), threads: new Set([openKey]) });
    };
    el.addEventListener("click", (event) => event.target.closest("a") || show());
    el.addEventListener("keydown", (event) => event.key === "Enter" && event.target === el && show());
    return el;
  }

  function renderSenders() {
    const select = form.elements.sender;
    const current = select.value;
    const phones = store.stage?.phones ?? [];
    fill(select, h("option", { value: "" }, "any"), phones.map((p) => h("option", { value: p.phoneNumber }, `${p.phoneNumber} (${p.displayName})`)));
    select.value = phones.some((p) => p.phoneNumber === current) ? current : "";
  }

  function renderHint() {
    hint.hidden = store.sent || !ctx.sample;
    if (hint.hidden || hint.childElementCount) return;
    const command = curlLine(ctx.sample);
    const copy = () => navigator.clipboard?.writeText(command).then(() => ctx.toast("Copied the curl line"));
    fill(
      hint,
      empty(
        "No messages sent yet (the one below is the docs' example, from the seed): send one with",
        h("pre", { class: "curl" }, h("code", {}, command)),
        h("button", { type: "button", onclick: copy }, "Copy"),
      ),
    );
  }

  async function sendReply() {
    const thread = store.threads.get(openKey);
    const content = reply.elements.content.value;
    if (!thread || !content.trim()) return;
    const done = await ctx.act(`Reply from ${thread.peer}`, () =>
      admin("POST", "/inbound", { from: thread.peer, to: thread.phone, content }),
    );
    if (done) reply.elements.content.value = "";
  }

  /** Open the thread of a message or reply, select it and show its details. */
  function reveal(id) {
    const message = store.messages.get(id);
    const entry = message ? { kind: "out", id } : { kind: "in", id };
    const record = store.record(entry);
    if (!record) return;
    if (!matcher(filters)(entry, record)) {
      for (const field of form.elements) if (field.name) field.value = ""; // no reset event
      filters = readFilters(form);
    }
    openKey = message ? `${record.from}|${record.to}` : `${record.to}|${record.from}`;
    const entries = store.threads.get(openKey).ordered().filter((e) => matcher(filters)(e, store.record(e)));
    shown = Math.max(BUBBLES_SHOWN, entries.length - entries.findIndex((e) => e.id === id));
    selected = id;
    render({ full: true });
    ctx.details.open(entry);
    bubbles.querySelector(`[data-id="${CSS.escape(id)}"]`)?.scrollIntoView({ block: "center" });
  }

  function clearSelection() {
    const was = selected;
    selected = null;
    render({ records: new Set([was]), threads: new Set([openKey]) });
  }

  return { render, reveal, clearSelection, focusSearch: () => form.elements.q.focus() };
}

function preview(record) {
  if (!record) return "";
  if (record.content) return record.content.slice(0, 80);
  return record.mediaUrls?.length ? `📎 ${record.mediaUrls.length} media` : "(no content)";
}

/** A one-line curl send with the sandbox's own seed key and a connected phone. */
export function curlLine({ origin, key, phoneId }) {
  const body = JSON.stringify({ fromPhoneId: phoneId, to: "+15557654321", content: "Hello from curl" });
  return `curl -X POST ${origin}/v1/messages/send -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" -d '${body}'`;
}

/** Arrow keys move between the focusable items of a list. */
function moveFocus(event, container, selector) {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const items = [...container.querySelectorAll(selector)];
  const index = items.indexOf(document.activeElement);
  if (index < 0) return;
  event.preventDefault();
  items[Math.max(0, Math.min(items.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)))].focus();
}
