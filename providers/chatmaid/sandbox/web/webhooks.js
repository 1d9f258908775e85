// Webhooks: the endpoints, and every delivery with every attempt, newest first.

import { admin, seg } from "./api.js";
import { deliveryCard } from "./deliveries.js";
import { empty, fill, formValues, h, redraw } from "./dom.js";

const SHOWN = 100;

export function webhooks(ctx) {
  const { store } = ctx;
  const endpoints = document.getElementById("endpoints");
  const list = document.getElementById("deliveries");
  const filter = document.getElementById("delivery-filter");
  const add = document.getElementById("add-endpoint");
  let shown = SHOWN;

  filter.addEventListener("change", () => {
    shown = SHOWN;
    renderDeliveries();
  });
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { url, secret, events } = formValues(add);
    const body = { url, secret };
    if (events) body.events = events.split(",").map((e) => e.trim()).filter(Boolean);
    if (await ctx.act("Add endpoint", () => admin("POST", "/webhooks", body))) add.reset();
  });

  function render(changed) {
    if (changed.full || changed.stage) renderEndpoints();
    if (changed.full || changed.deliveries?.size) renderDeliveries();
  }

  function renderEndpoints() {
    const hooks = store.stage?.webhooks ?? [];
    if (!hooks.length) {
      fill(endpoints, empty("No endpoint yet: add one below (or start the sandbox with --webhook URL --webhook-secret S)."));
      return;
    }
    fill(
      endpoints,
      h(
        "ul",
        { class: "endpoints" },
        hooks.map((w) =>
          h(
            "li",
            {},
            h("code", {}, w.url),
            h("small", {}, ` ${w.events.join(", ")}`),
            h("button", { type: "button", onclick: () => ctx.act("Remove endpoint", () => admin("DELETE", `/webhooks/${seg(w.id)}`)) }, "Remove"),
          ),
        ),
      ),
    );
  }

  function renderDeliveries() {
    const wanted = filter.value;
    const all = [...store.deliveries.values()].reverse();
    const matching = wanted ? all.filter((d) => (wanted === "problems" ? d.state !== "succeeded" : d.state === wanted)) : all;
    if (!matching.length) {
      const text = all.length
        ? "No delivery in this state."
        : "No webhook delivery yet: add an endpoint, then send a message (or connect a phone).";
      fill(list, empty(text));
      return;
    }
    const cards = matching.slice(0, shown).map((d) => deliveryCard(d, ctx));
    if (matching.length > shown) {
      const more = () => {
        shown += SHOWN;
        renderDeliveries();
      };
      cards.push(h("button", { type: "button", onclick: more }, `Show older (${matching.length - shown})`));
    }
    redraw(list, () => fill(list, cards));
  }

  /** Deliveries whose latest state is failed, for the navigation's badge. */
  const failedCount = () => [...store.deliveries.values()].filter((d) => d.state === "failed").length;

  return { render, failedCount };
}
