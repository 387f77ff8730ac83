// JSON over fetch with the session cookie and Django's CSRF token.

export type FieldErrors = Record<string, string[] | string>;

export class ConsoleApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: FieldErrors | null,
  ) {
    super(describe(status, body));
  }
}

export function describe(status: number, body: FieldErrors | null): string {
  if (body && typeof body.detail === "string") {
    return body.detail;
  }
  if (body && Array.isArray(body.detail) && Object.keys(body).length === 1) {
    return body.detail.join(" "); // DRF's ValidationError({"detail": [...]})
  }
  if (body) {
    const parts = Object.entries(body).map(
      ([field, msgs]) => `${field}: ${Array.isArray(msgs) ? msgs.join(" ") : String(msgs)}`,
    );
    if (parts.length) {
      return parts.join("; ");
    }
  }
  return `The server answered ${status}.`;
}

function csrfToken(doc: Document): string {
  const input = doc.querySelector<HTMLInputElement>("input[name=csrfmiddlewaretoken]");
  if (input?.value) {
    return input.value;
  }
  const match = doc.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function parse<T>(response: Response): Promise<T> {
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    // A proxy's or the server's HTML error page: report the status alone.
    parsed = null;
  }
  if (!response.ok) {
    throw new ConsoleApiError(response.status, parsed as FieldErrors | null);
  }
  return parsed as T;
}

/** The answer with its status (201 made, 200 found), for APIs where that difference matters. */
export async function send<T>(doc: Document, method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...(method === "GET" ? {} : { "X-CSRFToken": csrfToken(doc) }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await parse<T>(response) };
}

export async function call<T>(doc: Document, method: string, url: string, body?: unknown): Promise<T> {
  return (await send<T>(doc, method, url, body)).body;
}

/** POST a multipart form (a file upload); the browser sets the boundary. */
export async function upload<T>(doc: Document, url: string, form: FormData): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken(doc) },
    body: form,
  });
  return parse<T>(response);
}
