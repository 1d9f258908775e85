// Play the other side: phones, subscription, faults, settings, keys, replies, reset.

import { admin, seg } from "./api.js";
import { empty, fill, formValues, h } from "./dom.js";

export function stage(ctx) {
  const { store } = ctx;
  const $ = (id) => document.getElementById(id);
  const settingsForm = $("settings-form");
  let settingsShown = null; // the epoch whose settings the form shows: a reset refills it

  on("add-phone", (v) => admin("POST", "/phones", v), "Add phone");
  on("subscription-form", (v) => admin("PUT", "/subscription", v), "Set subscription");
  on("window-form", (v) => admin("POST", "/faults", { kind: "rate_limit", ...v }), "Start 429 window");
  on("fault-form", (v) => admin("POST", "/faults", v), "Add fault");
  on("inbound-form", (v) => admin("POST", "/inbound", v), "Inbound message");
  on("outgoing-form", (v) => admin("POST", "/outgoing", v), "Typed on the phone");
  on("settings-form", (v) => admin("PATCH", "/settings", v), "Apply settings", () => {
    settingsShown = null;
  });
  $("clear-faults").addEventListener("click", () => ctx.act("Clear faults", () => admin("DELETE", "/faults")));
  const confirm = $("reset-confirm");
  $("reset").addEventListener("click", () => {
    confirm.hidden = false;
    confirm.focus();
  });
  confirm.addEventListener("click", async () => {
    confirm.hidden = true;
    await ctx.act("Reset", () => admin("POST", "/reset"));
  });

  /** Submit `formId` through `call(values)`; `after` runs on success. */
  function on(formId, call, label, after) {
    const form = $(formId);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await ctx.act(label, () => call(formValues(form)))) after?.();
    });
  }

  function render(changed) {
    if (!changed.full && !changed.stage) return;
    const s = store.stage;
    renderPhones(s.phones);
    $("subscription-now").textContent = s.account.subscriptionStatus;
    $("profile-now").textContent = s.settings.profile;
    renderFaults(s.faults);
    renderKeys(s.apiKeys);
    for (const select of document.querySelectorAll("select.phone-choice")) phoneChoices(select, s.phones);
    if (settingsShown !== store.epoch) {
      for (const [name, value] of Object.entries(s.settings)) {
        const field = settingsForm.elements[name];
        if (field?.type === "checkbox") field.checked = value;
        else if (field) field.value = value;
      }
      settingsShown = store.epoch;
    }
  }

  function renderPhones(phones) {
    fill(
      $("phones"),
      phones.map((p) => {
        const connected = p.connectionStatus === "connected";
        const toggle = () =>
          ctx.act(`${connected ? "Disconnect" : "Connect"} ${p.phoneNumber}`, () =>
            admin("PUT", `/phones/${seg(p.id)}/connection`, { connected: !connected }),
          );
        return h(
          "tr",
          { dataset: { id: p.id } },
          h("td", {}, p.phoneNumber),
          h("td", {}, p.displayName),
          h("td", {}, h("span", { class: `badge phone-${p.connectionStatus}` }, p.connectionStatus)),
          h("td", {}, h("button", { type: "button", onclick: toggle }, connected ? "Disconnect" : "Connect")),
          h("td", {}, h("code", {}, p.id)),
        );
      }),
    );
  }

  function renderFaults(faults) {
    const clear = $("clear-faults");
    clear.hidden = !faults.length;
    if (!faults.length) {
      fill($("faults"), empty("No fault: /v1 answers normally."));
      return;
    }
    fill(
      $("faults"),
      h(
        "ul",
        {},
        faults.map((f) =>
          h(
            "li",
            {},
            h("strong", {}, f.kind),
            ` ${f.method ?? "any method"} ${f.path ?? "/v1"}`,
            f.kind === "latency" ? ` +${f.seconds}s` : "",
            f.kind === "error" ? ` HTTP ${f.status}` : "",
            f.kind === "rate_limit" ? ` for ${f.seconds}s${f.retryAfter ? `, retryAfter ${f.retryAfter}` : ""}` : "",
            f.fraction < 1 ? ` on ${Math.round(f.fraction * 100)} %` : "",
            f.remaining !== null ? ` (${f.remaining} left)` : "",
            " ",
            h("button", { type: "button", onclick: () => ctx.act("Remove fault", () => admin("DELETE", `/faults/${seg(f.id)}`)) }, "Remove"),
          ),
        ),
      ),
    );
  }

  function renderKeys(keys) {
    fill(
      $("keys"),
      keys.map((k) => {
        const flip = () => ctx.act(`${k.expired ? "Revive" : "Expire"} ${k.id}`, () => admin("PATCH", `/api-keys/${seg(k.id)}`, { expired: !k.expired }));
        return h(
          "tr",
          {},
          h("td", {}, h("code", {}, k.id)),
          h("td", {}, k.environment),
          h("td", {}, k.scopes.join(", ")),
          h("td", {}, k.rateLimit ?? "sandbox-wide"),
          h("td", {}, k.expired ? "expired" : "valid", " ", h("button", { type: "button", onclick: flip }, k.expired ? "Revive" : "Expire")),
        );
      }),
    );
  }

  return { render };
}

function phoneChoices(select, phones) {
  const current = select.value;
  fill(select, phones.map((p) => h("option", { value: p.id }, `${p.phoneNumber} (${p.displayName})`)));
  if (phones.some((p) => p.id === current)) select.value = current;
}
