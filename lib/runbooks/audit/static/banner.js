// The verify verdict on a run page, from data/verify.js (written at each build; the run page is not).
(function () {
  "use strict";
  var v = window.AUDIT_VERIFY;
  var el = document.getElementById("verify-banner");
  if (!v || !el) { return; }
  var run = el.getAttribute("data-run");
  var mine = (v.runs && v.runs[run]) || [];
  el.textContent = "";
  var strong = document.createElement("strong");
  if (mine.length) {
    el.className = "banner bad";
    strong.textContent = "This run does NOT verify (" + v.at + "): ";
    el.appendChild(strong);
    el.appendChild(document.createTextNode(mine.join("; ")));
  } else if (!v.ok) {
    el.className = "banner bad";
    strong.textContent = "Archive NOT intact at build time " + v.at + ": " + v.count + " finding(s)";
    el.appendChild(strong);
    el.appendChild(document.createTextNode(" (none about this run; see the run list)."));
  } else {
    el.className = "banner ok";
    strong.textContent = "Archive intact";
    el.appendChild(strong);
    el.appendChild(document.createTextNode(": " + v.entries + " ledger entries verified at build time " + v.at + "."));
  }
})();
