// Entry point of the admin console (/console/): each page starts its own module. Rounds: the
// dashboard polls the rounds API and launches; data: imports and generation; PRM: training,
// runs with their live log, activation and retirement.
import "./console/console.css";
import { startDataPage } from "./console/data";
import { startPrmPage } from "./console/prm";
import { startRoundsPage } from "./console/rounds";

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.consolePage;
  if (page === "rounds") {
    startRoundsPage(document);
  } else if (page === "data") {
    startDataPage(document);
  } else if (page === "prm") {
    startPrmPage(document);
  }
});
