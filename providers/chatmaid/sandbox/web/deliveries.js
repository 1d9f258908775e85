// One webhook delivery as a card: the event, every attempt, the body, "deliver again".

import { admin, seg } from "./api.js";
import { clock, h, pretty, stamp } from "./dom.js";

const STATE_LABELS = {
  queued: "queued",
  retrying: "retrying",
  succeeded: "delivered",
  failed: "failed",
  dropped: "dropped (endpoint removed)",
};

export function deliveryCard(delivery, ctx) {
  const { state } = delivery;
  const again = () =>
    ctx.act(`Deliver ${delivery.event} again`, () =>
      admin("POST", `/deliveries/${seg(delivery.deliveryId)}/redeliver`),
    );
  return h(
    "article",
    { class: `delivery state-${state}`, dataset: { id: delivery.deliveryId, event: delivery.event } },
    h(
      "header",
      {},
      h("strong", { class: "event" }, delivery.event),
      h("span", { class: `badge state-${state}` }, STATE_LABELS[state] ?? state),
      h("code", {}, delivery.deliveryId),
    ),
    h(
      "p",
      { class: "target" },
      `to ${delivery.url}`,
      delivery.subject ? [" · about ", subject(delivery.subject, ctx)] : "",
      delivery.redeliveryOf ? ` · again of ${delivery.redeliveryOf}` : "",
      delivery.nextAttemptAt ? ` · next attempt at ${clock(delivery.nextAttemptAt)}` : "",
    ),
    delivery.attempts.length ? attemptsTable(delivery.attempts) : h("p", { class: "muted" }, "Not attempted yet."),
    h("details", {}, h("summary", {}, "Body sent"), h("pre", {}, pretty(delivery.body))),
    h("button", { type: "button", class: "redeliver", onclick: again }, "Deliver again"),
  );
}

/** The message or reply a delivery is about, as a button that shows it; a phone as text. */
function subject(id, ctx) {
  const known = ctx.store.messages.has(id) || ctx.store.inbound.has(id);
  return known ? h("button", { type: "button", class: "link", onclick: () => ctx.reveal(id) }, id) : id;
}

function attemptsTable(attempts) {
  const rows = attempts.map((a) =>
    h(
      "tr",
      { class: a.succeeded ? "ok" : "bad" },
      h("td", {}, a.attempt),
      h("td", {}, stamp(a.attemptedAt), h("br"), h("small", {}, `+${a.offsetSeconds}s`)),
      h("td", { class: "signature" }, h("code", {}, a.signature)),
      h("td", { class: "status" }, a.statusCode ?? a.error ?? "—"),
      h("td", {}, a.answeredAt ? stamp(a.answeredAt) : "no answer", h("br"), h("small", {}, `${a.durationMs} ms`)),
      h("td", { class: "answer" }, a.responseBody ? h("code", {}, a.responseBody) : "—"),
    ),
  );
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "attempts" },
      h("caption", { class: "visually-hidden" }, "Attempts"),
      h(
        "thead",
        {},
        h("tr", {}, ["#", "Attempted", "X-Chatmaid-Signature", "HTTP status", "Answered", "Answer body"].map((t) => h("th", { scope: "col" }, t))),
      ),
      h("tbody", {}, rows),
    ),
  );
}
