// flowwarden scan report: filter the alert list as the user types. No libraries, no network.
(function () {
  "use strict";
  var input = document.getElementById("alert-filter");
  var count = document.getElementById("alert-count");
  if (!input) { return; }
  var alerts = Array.prototype.slice.call(document.querySelectorAll("#alert-list .alert"));
  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    alerts.forEach(function (el) {
      var text = el.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
      el.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + alerts.length + " alerts";
  }
  input.addEventListener("input", apply);
}());
