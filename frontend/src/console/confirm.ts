// The console's confirmation for destructive actions: the page's <dialog id="confirm-dialog">
// (base.html), opened modally. Resolves true only when the admin presses the confirm button;
// "Keep", Esc or closing the dialog decline.

export interface ConfirmText {
  title: string;
  message: string;
  confirm: string;
}

export function confirmAction(doc: Document, text: ConfirmText): Promise<boolean> {
  const dialog = doc.getElementById("confirm-dialog") as HTMLDialogElement | null;
  if (!dialog || typeof dialog.showModal !== "function") {
    // No dialog on the page: fall back to the browser's own confirm rather than act unasked.
    return Promise.resolve(window.confirm(`${text.title}\n\n${text.message}`));
  }
  (doc.getElementById("confirm-title") as HTMLElement).textContent = text.title;
  (doc.getElementById("confirm-message") as HTMLElement).textContent = text.message;
  (doc.getElementById("confirm-yes") as HTMLButtonElement).textContent = text.confirm;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}
