// Entry point of the browser app. Each page names itself in <body data-page="...">.
import "./styles.css";
import { renderMe } from "./me";
import { Workspace } from "./workspace";

function boot(): void {
  const root = document.getElementById("app");
  if (!root) {
    return;
  }
  const page = document.body.dataset.page;
  const username = document.body.dataset.username ?? "";
  if (page === "workspace") {
    void new Workspace(root, username).start();
  } else if (page === "me") {
    void renderMe(root);
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", boot);
} else {
  boot();
}
