// flowwarden scan report: filter the alerts embedded in the page as the user types. It searches
// only what the page holds (the first alerts of each rule); no libraries, no network.
(function () {
  "use strict";
  var input = document.getElementById("alert-filter");
  var count = document.getElementById("alert-count");
  if (!input) { return; }
  var alerts = Array.prototype.slice.call(document.querySelectorAll("#alert-list .alert"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("#alert-list .rule-alerts"));
  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    alerts.forEach(function (el) {
      var text = el.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
      el.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
    });
    // While filtering, a rule with no matching alert on the page is hidden as a whole.
    groups.forEach(function (group) {
      var any = group.querySelector(".alert:not(.hidden)") !== null;
      group.classList.toggle("hidden", words.length > 0 && !any);
    });
    var total = alerts.length.toLocaleString("en-US");
    count.textContent = words.length
      ? shown.toLocaleString("en-US") + " of " + total + " alerts on this page"
      : total + (alerts.length === 1 ? " alert" : " alerts") + " on this page";
  }
  input.addEventListener("input", apply);
}());
