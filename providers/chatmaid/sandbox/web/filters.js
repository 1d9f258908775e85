// The search box and filters: which thread entries (messages, replies) to show.

/** The filters' current values: q (search), status, sender, environment, key. */
export function readFilters(form) {
  const value = (name) => form.elements[name].value.trim();
  return {
    q: value("q").toLowerCase(),
    status: value("status"),
    sender: value("sender"),
    environment: value("environment"),
    key: value("key").toLowerCase(),
  };
}

export const isFiltering = (f) => Boolean(f.q || f.status || f.sender || f.environment || f.key);

/** A predicate on `{entry, record}` for the filters `f`. */
export function matcher(f) {
  if (!isFiltering(f)) return () => true;
  return (entry, record) => {
    const outbound = entry.kind === "out";
    if (f.status && (outbound ? record.status : "received") !== f.status) return false;
    if (f.sender && (outbound ? record.from : record.to) !== f.sender) return false;
    if (f.environment && (!outbound || record.environment !== f.environment)) return false;
    if (f.key && !(outbound && (record.idempotencyKey ?? "").toLowerCase().includes(f.key))) {
      return false;
    }
    return !f.q || haystack(record).includes(f.q);
  };
}

// Records are replaced, never changed, when the feed updates them: a WeakMap keeps each
// one's search text exactly as long as the record is current.
const texts = new WeakMap();

function haystack(record) {
  if (!texts.has(record)) texts.set(record, searchText(record));
  return texts.get(record);
}

function searchText(record) {
  return [
    record.id,
    record.content,
    record.from,
    record.to,
    record.idempotencyKey,
    record.errorCode,
    record.errorMessage,
    ...(record.mediaUrls ?? []),
  ]
    .filter(Boolean)
    .join("\n")
    .toLowerCase();
}
