// What the page knows: the records of the change feed, kept up to date poll by poll.

/** A conversation: one sender phone of the account and one other party. */
class Thread {
  constructor(key, phone, peer) {
    this.key = key;
    this.phone = phone;
    this.peer = peer;
    this.entries = []; // {kind: "out" | "in", id, at}, by time once sorted
    this.sorted = true;
    this.lastAt = "";
  }

  add(entry) {
    const last = this.entries[this.entries.length - 1];
    if (last && entry.at < last.at) this.sorted = false;
    this.entries.push(entry);
    if (entry.at > this.lastAt) this.lastAt = entry.at;
  }

  ordered() {
    if (!this.sorted) {
      this.entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      this.sorted = true;
    }
    return this.entries;
  }
}

export class Store {
  constructor() {
    this.clear();
  }

  clear() {
    this.epoch = null;
    this.seq = 0;
    this.messages = new Map();
    this.inbound = new Map();
    this.deliveries = new Map(); // by deliveryId, in the order first seen
    this.bySubject = new Map(); // subject id -> Set of deliveryIds
    this.threads = new Map();
    this.stage = null;
    this.sent = false; // a message was sent through the API (the seed's example was not)
  }

  /** Take one feed answer in; what changed, for the views to redraw only that. */
  apply(feed) {
    const full = feed.full || feed.epoch !== this.epoch;
    if (full) this.clear();
    this.epoch = feed.epoch;
    this.seq = feed.seq;
    const changed = { full, threads: new Set(), records: new Set(), deliveries: new Set() };
    for (const message of feed.messages) {
      if (!this.messages.has(message.id)) {
        this.thread(message.from, message.to).add({ kind: "out", id: message.id, at: message.createdAt });
      }
      this.messages.set(message.id, message);
      if (message.requestBody !== null) this.sent = true;
      changed.threads.add(`${message.from}|${message.to}`);
      changed.records.add(message.id);
    }
    for (const reply of feed.inbound) {
      if (!this.inbound.has(reply.id)) {
        this.thread(reply.to, reply.from).add({ kind: "in", id: reply.id, at: reply.receivedAt });
      }
      this.inbound.set(reply.id, reply);
      changed.threads.add(`${reply.to}|${reply.from}`);
      changed.records.add(reply.id);
    }
    for (const delivery of feed.deliveries) {
      this.deliveries.set(delivery.deliveryId, delivery);
      if (delivery.subject) {
        if (!this.bySubject.has(delivery.subject)) this.bySubject.set(delivery.subject, new Set());
        this.bySubject.get(delivery.subject).add(delivery.deliveryId);
        changed.records.add(delivery.subject);
      }
      changed.deliveries.add(delivery.deliveryId);
    }
    const stage = JSON.stringify(feed.stage);
    changed.stage = stage !== this.stageJson;
    this.stageJson = stage;
    this.stage = feed.stage;
    return changed;
  }

  thread(phone, peer) {
    const key = `${phone}|${peer}`;
    if (!this.threads.has(key)) this.threads.set(key, new Thread(key, phone, peer));
    return this.threads.get(key);
  }

  /** The record of a thread entry (a message or an inbound reply). */
  record(entry) {
    return entry.kind === "out" ? this.messages.get(entry.id) : this.inbound.get(entry.id);
  }

  /** Deliveries about a message, reply or phone, oldest first. */
  deliveriesFor(subject) {
    return [...(this.bySubject.get(subject) ?? [])].map((id) => this.deliveries.get(id));
  }
}
