/*
 * Bias-audit request form: the attribute list shows only the chosen system's attributes
 * (the server sends one group per system, labelled with the system's name). Without this
 * file every group stays visible and the server still checks the pair.
 */
(function () {
  "use strict";
  var system = document.getElementById("id_system");
  var attribute = document.getElementById("id_attribute");
  if (!system || !attribute || !attribute.querySelector("optgroup")) { return; }

  function sync() {
    var chosen = system.selectedIndex > 0 ? system.options[system.selectedIndex].text : null;
    Array.prototype.forEach.call(attribute.querySelectorAll("optgroup"), function (group) {
      var show = chosen === null || group.label === chosen;
      group.hidden = !show;
      group.disabled = !show;
    });
    var current = attribute.options[attribute.selectedIndex];
    if (current && current.parentElement.disabled) { attribute.value = ""; }
  }
  system.addEventListener("change", sync);
  sync();
})();
