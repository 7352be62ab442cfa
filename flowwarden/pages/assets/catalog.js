// flowwarden rule catalog: client-side search and filters over the rule index.
// Every row carries its facets in data-* attributes; nothing is fetched.
(function () {
  "use strict";
  var table = document.getElementById("rule-index");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
  var search = document.getElementById("rule-search");
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-facet]"));
  var count = document.getElementById("rule-count");

  function facetMatches(row, select) {
    var wanted = select.value;
    if (!wanted) { return true; }
    var values = (row.getAttribute("data-" + select.getAttribute("data-facet")) || "").split("|");
    return values.indexOf(wanted) !== -1;
  }

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.getAttribute("data-search") || "";
      var ok = words.every(function (w) { return text.indexOf(w) !== -1; }) &&
        selects.every(function (s) { return facetMatches(row, s); });
      row.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " rules";
  }

  search.addEventListener("input", apply);
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
}());
