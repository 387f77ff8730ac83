// Entry point of the admin console (/console/): the round dashboard polls the rounds API, the
// launch form posts to it, and pause / resume / cancel buttons act on a round.
import "./console/console.css";
import { startRoundsPage } from "./console/rounds";

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.consolePage === "rounds") {
    startRoundsPage(document);
  }
});
