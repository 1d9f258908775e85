// The page's only server: the sandbox's admin API (docs/sandbox.md, "Admin API").

export class AdminError extends Error {
  constructor(status, messages) {
    super(messages.join("; "));
    this.status = status;
  }
}

/** Call `/_sandbox<path>`; the answer's `data`, or an AdminError with its `message[]`. */
export async function admin(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/_sandbox${path}`, init);
  const payload = await response.json().catch(() => ({}));
  if (!response.ok || payload.success !== true) {
    const messages = Array.isArray(payload.message) ? payload.message : [response.statusText];
    throw new AdminError(response.status, messages);
  }
  return payload.data;
}

/** The path segment for an ID or an E.164 number. */
export const seg = (value) => encodeURIComponent(value);
