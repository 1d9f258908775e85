// A message's (or reply's) details: ids, the request as received, lifecycle, webhooks.

import { admin, seg } from "./api.js";
import { deliveryCard } from "./deliveries.js";
import { empty, facts, fill, h, pretty, redraw, safeUrl, stamp } from "./dom.js";

export function details(ctx) {
  const panel = document.getElementById("details");
  let current = null; // a thread entry: {kind, id}

  function open(entry) {
    current = entry;
    panel.hidden = false;
    render({ full: true });
    panel.querySelector("h2")?.focus();
  }

  function close() {
    if (!current) return;
    current = null;
    panel.hidden = true;
    ctx.conversations.clearSelection();
  }

  function render(changed) {
    if (!current || !(changed.full || changed.records?.has(current.id))) return;
    const record = ctx.store.record(current);
    if (!record) return close();
    const closer = h("button", { type: "button", class: "close", "aria-label": "Close details", onclick: close }, "×");
    const body = current.kind === "out" ? messageDetails(record) : replyDetails(record);
    const deliveries = ctx.store.deliveriesFor(record.id).reverse();
    redraw(panel, () =>
      fill(
        panel,
        h("header", {}, h("h2", { tabindex: -1 }, current.kind === "out" ? "Message" : "Inbound reply"), closer),
        body,
        h("h3", {}, `Webhook deliveries (${deliveries.length})`),
        deliveries.length ? deliveries.map((d) => deliveryCard(d, ctx)) : empty(noDeliveries(current.kind)),
      ),
    );
  }

  function messageDetails(m) {
    const links = m.mediaUrls.map((url) => {
      const href = safeUrl(url);
      return h("div", {}, href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, url) : url);
    });
    return [
      facts([
        ["ID", h("code", {}, m.id)],
        ["Status", h("span", { class: `badge status-${m.status}` }, m.status)],
        ["Environment", m.environment],
        ["From", `${m.from} (phone ${m.phoneId})`],
        ["To", m.to],
        ["Idempotency key", m.idempotencyKey === null ? "—" : h("code", {}, m.idempotencyKey)],
        ["API key", m.apiKeyId],
        ["Content", m.content],
        ["Media", links.length ? links : null],
        ["Error", m.errorCode ? `${m.errorCode}: ${m.errorMessage}` : null],
      ]),
      nextStep(m),
      h("h3", {}, "Lifecycle"),
      facts([
        ["Created", stamp(m.createdAt)],
        ["Sent", stamp(m.sentAt)],
        ["Delivered", stamp(m.deliveredAt)],
        ["Read", stamp(m.readAt)],
        ["Failed", stamp(m.failedAt)],
      ]),
      h("h3", {}, "Request as received"),
      m.requestBody === null
        ? h("p", { class: "muted" }, "None: this message is part of the seed, not sent through the API.")
        : h("pre", { class: "request" }, `POST /v1/messages/send\n\n${pretty(m.requestBody)}`),
    ];
  }

  function nextStep(m) {
    const live = ctx.store.stage?.settings.profile === "live";
    const due = (m.environment === "live" && m.status === "pending") || (live && ["sent", "delivered"].includes(m.status));
    if (!due) return null;
    const advance = () => ctx.act("Next step", () => admin("POST", `/messages/${seg(m.id)}/advance`));
    return h("p", {}, h("button", { type: "button", class: "advance", onclick: advance }, `Next step now (${m.status} → …)`));
  }

  function replyDetails(r) {
    return facts([
      ["ID", h("code", {}, r.id)],
      ["From", r.from],
      ["To", r.to],
      ["Type", r.type],
      ["Content", r.content],
      ["Received", stamp(r.receivedAt)],
    ]);
  }

  return { open, close, render, isOpen: () => current !== null };
}

function noDeliveries(kind) {
  return kind === "out"
    ? "No delivery: no webhook endpoint was subscribed to this message's events when it changed (add one under Webhooks)."
    : "No delivery: message.received is sent in the live profile only, to endpoints subscribed to it.";
}
