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

export async function call<T>(doc: Document, method: string, url: string, body?: unknown): Promise<T> {
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
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as unknown) : null;
  if (!response.ok) {
    throw new ConsoleApiError(response.status, parsed as FieldErrors | null);
  }
  return parsed as T;
}
