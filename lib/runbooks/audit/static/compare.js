// "Compare two runs" on a procedure page: the findings diff of any two of the runs drawn on the page.
// Data: a JSON block per environment, {keys: [check key...], runs: [{id, t, s}]}, s holding one letter per
// key (P PASS, W WARN, F FAIL, - absent), oldest run first. The same rules as the build's findings diff.
(function () {
  "use strict";
  var NAMES = { P: "PASS", W: "WARN", F: "FAIL", "-": "absent" };
  Array.prototype.forEach.call(document.querySelectorAll(".compare"), function (box) {
    var data = JSON.parse(box.querySelector(".compare-data").textContent);
    var a = box.querySelector(".cmp-a"), b = box.querySelector(".cmp-b"), out = box.querySelector(".cmp-out");
    data.runs.forEach(function (r, i) {
      [a, b].forEach(function (sel) {
        var o = document.createElement("option");
        o.value = String(i);
        o.textContent = r.t + "  " + r.id;
        sel.appendChild(o);
      });
    });
    a.value = String(data.runs.length - 2);
    b.value = String(data.runs.length - 1);

    function item(list, cls, text) {
      var li = document.createElement("li");
      li.className = cls;
      li.textContent = text;
      list.appendChild(li);
    }

    function render() {
      var ra = data.runs[+a.value], rb = data.runs[+b.value];
      var list = document.createElement("ul");
      list.className = "diff";
      var unchanged = 0, groups = { started: [], stopped: [], changed: [] };
      data.keys.forEach(function (key, i) {
        var before = ra.s.charAt(i), after = rb.s.charAt(i);
        if (before === after) { unchanged += 1; return; }
        var text = key + " (" + NAMES[before] + " → " + NAMES[after] + ")";
        if (after === "F") { groups.started.push("started failing: " + text); }
        else if (before === "F") { groups.stopped.push("stopped failing: " + text); }
        else { groups.changed.push("changed: " + text); }
      });
      ["started", "stopped", "changed"].forEach(function (g) {
        groups[g].forEach(function (text) { item(list, g, text); });
      });
      out.textContent = "";
      var p = document.createElement("p");
      p.textContent = list.children.length ? unchanged + " check(s) unchanged; changes:" : "No check changed status (" + unchanged + " unchanged).";
      out.appendChild(p);
      if (list.children.length) { out.appendChild(list); }
    }
    a.addEventListener("change", render);
    b.addEventListener("change", render);
    render();
  });
})();
