// Small DOM helpers shared by the console's pages.

export function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  text?: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  if (text !== undefined) {
    node.textContent = text;
  }
  if (className) {
    node.className = className;
  }
  return node;
}

/** Re-render server-rendered sections in place: fetch this page again and swap each element
 * with the same id, all at once (the page's own template stays the one way they are drawn). */
export async function refreshSection(doc: Document, ...ids: string[]): Promise<void> {
  const response = await fetch(doc.location.href, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (!response.ok) {
    return;
  }
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) {
    const next = fresh.getElementById(id);
    const current = doc.getElementById(id);
    if (next && current) {
      current.replaceWith(doc.importNode(next, true));
    }
  }
}

export function when(iso: string | null | undefined): string {
  if (!iso) {
    return "–";
  }
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
