// The run list: filters, counts per status, free-text search and export of what is shown.
// Data: window.AUDIT_RUNS (data/runs.js), newest first; fields are those of `runbooks runs list --json`.
(function () {
  "use strict";
  var D = window.AUDIT_RUNS;
  var F = {};
  D.fields.concat(D.extra).forEach(function (name, i) { F[name] = i; });
  var PAGE = 200;  // rows drawn at first and per "Show more" (10,000 rows of DOM would make the page sluggish)
  var SELECTS = ["procedure", "environment", "status", "actor", "trigger"];
  var form = document.getElementById("filters");
  var tbody = document.querySelector("#runs tbody");
  var more = document.getElementById("more");
  var shownEl = document.getElementById("shown");
  var countsEl = document.getElementById("counts");
  var filtered = D.rows;
  var limit = PAGE;
  // search text per row, built once
  var hay = D.rows.map(function (r) {
    return [r[F.run_id], r[F.procedure], r[F.environment], r[F.status], r[F.actor], r[F.trigger],
      r[F.error_kind] || "", r[F.error_message] || ""].join(" ").toLowerCase();
  });

  function state() {
    var s = {};
    SELECTS.concat(["from", "to", "q"]).forEach(function (k) { s[k] = form.elements[k].value; });
    return s;
  }

  function matches(s) {
    var q = s.q.trim().toLowerCase();
    var from = s.from ? s.from : null;               // YYYY-MM-DD, compared with the UTC start
    var to = s.to ? s.to + "\uffff" : null;           // inclusive: the whole day
    var out = [];
    for (var i = 0; i < D.rows.length; i++) {
      var r = D.rows[i], ok = true;
      for (var j = 0; j < SELECTS.length && ok; j++) {
        var k = SELECTS[j];
        if (s[k] && r[F[k]] !== s[k]) { ok = false; }
      }
      if (!ok) { continue; }
      var started = r[F.started_at];
      if (from && started < from) { continue; }
      if (to && started > to) { continue; }
      if (q && hay[i].indexOf(q) === -1) { continue; }
      out.push(r);
    }
    return out;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function fmtDuration(s) {
    if (s < 60) { return s.toFixed(1) + "s"; }
    var m = Math.floor(Math.round(s) / 60), sec = Math.round(s) % 60;
    if (m < 60) { return m + "m" + (sec < 10 ? "0" : "") + sec + "s"; }
    return Math.floor(m / 60) + "h" + ((m % 60) < 10 ? "0" : "") + (m % 60) + "m";
  }

  function row(r) {
    var tr = document.createElement("tr");
    tr.className = "run st-row-" + r[F.status];
    tr.setAttribute("data-run", r[F.run_id]);
    cell(tr, r[F.started_at].replace("T", " ").replace(/\.\d+/, ""));
    cell(tr, r[F.procedure]);
    cell(tr, r[F.environment]);
    var st = cell(tr, "");
    var badge = document.createElement("span");
    badge.className = "badge st-" + r[F.status];
    badge.textContent = r[F.status].replace("_", " ");
    st.appendChild(badge);
    if (r[F.error_kind]) { st.appendChild(document.createTextNode(" " + r[F.error_kind])); }
    cell(tr, r[F.actor]);
    cell(tr, r[F.trigger]);
    cell(tr, fmtDuration(r[F.duration_seconds]));
    var n = r[F.pass] + r[F.warn] + r[F.fail];
    cell(tr, n ? (r[F.fail] ? r[F.fail] + " FAIL, " : "") + (r[F.warn] ? r[F.warn] + " WARN, " : "") + r[F.pass] + " PASS" : "");
    var idc = cell(tr, "", "mono");
    var a = document.createElement("a");
    a.href = "runs/" + encodeURIComponent(r[F.run_id]) + ".html";
    a.textContent = r[F.run_id];
    idc.appendChild(a);
    return tr;
  }

  function renderRows() {
    var frag = document.createDocumentFragment();
    var n = Math.min(limit, filtered.length);
    for (var i = 0; i < n; i++) { frag.appendChild(row(filtered[i])); }
    tbody.textContent = "";
    tbody.appendChild(frag);
    more.hidden = filtered.length <= limit;
    shownEl.textContent = "showing " + n + " of " + filtered.length + " matching run(s)";
  }

  function renderCounts(s) {
    var byStatus = {};
    var base = matches(Object.assign({}, s, { status: "" }));
    base.forEach(function (r) { byStatus[r[F.status]] = (byStatus[r[F.status]] || 0) + 1; });
    countsEl.textContent = "";
    var all = document.createElement("button");
    all.type = "button";
    all.textContent = "all " + base.length;
    all.className = s.status ? "" : "active";
    all.setAttribute("data-status", "");
    countsEl.appendChild(all);
    Object.keys(byStatus).sort().forEach(function (k) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "badge st-" + k + (s.status === k ? " active" : "");
      b.setAttribute("data-status", k);
      b.textContent = k.replace("_", " ") + " " + byStatus[k];
      countsEl.appendChild(b);
    });
  }

  function apply(writeHash) {
    var s = state();
    filtered = matches(s);
    limit = PAGE;
    renderCounts(s);
    renderRows();
    if (writeHash) {
      var parts = [];
      Object.keys(s).forEach(function (k) { if (s[k]) { parts.push(k + "=" + encodeURIComponent(s[k])); } });
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    }
    document.body.setAttribute("data-ready", "1");
  }

  function readHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i < 1) { return; }
      var k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
      var el = form.elements[k];
      if (!el) { return; }
      if (el.tagName === "SELECT" && !Array.prototype.some.call(el.options, function (o) { return o.value === v; })) {
        var o = document.createElement("option"); o.value = v; o.textContent = v; el.appendChild(o);
      }
      el.value = v;
    });
  }

  function exportRows() {
    return filtered.map(function (r) {
      var o = {};
      D.fields.forEach(function (f) { o[f] = r[F[f]]; });
      return o;
    });
  }

  function csvCell(v) {
    if (v === null || v === undefined) { return ""; }
    var t = String(v);
    if (/^[=+\-@\t\r]/.test(t)) { t = "'" + t; }  // no formula injection when opened in a spreadsheet
    return /[",\n\r]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
  }

  function download(name, type, text) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: type }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  document.getElementById("export-csv").addEventListener("click", function () {
    var lines = [D.fields.join(",")];
    exportRows().forEach(function (o) { lines.push(D.fields.map(function (f) { return csvCell(o[f]); }).join(",")); });
    download("runs.csv", "text/csv", lines.join("\r\n") + "\r\n");
  });
  document.getElementById("export-json").addEventListener("click", function () {
    download("runs.json", "application/json", JSON.stringify(exportRows(), null, 2) + "\n");
  });
  more.addEventListener("click", function () { limit += PAGE; renderRows(); });
  countsEl.addEventListener("click", function (ev) {
    var b = ev.target.closest("button");
    if (!b) { return; }
    form.elements.status.value = b.getAttribute("data-status");
    apply(true);
  });
  form.addEventListener("input", function () { apply(true); });
  form.addEventListener("change", function () { apply(true); });
  form.addEventListener("reset", function () { setTimeout(function () { apply(true); }, 0); });
  window.addEventListener("hashchange", function () { readHash(); apply(false); });
  readHash();
  apply(false);
})();
