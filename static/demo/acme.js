// Acme's own page script: the host app's behaviour, reporting what users do to Milepost with
// milepost.push(["track", name, properties]) (queued until the SDK has loaded).
(function () {
  "use strict";
  window.milepost = window.milepost || [];

  function addItem(list, text) {
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    var item = document.createElement("li");
    item.textContent = text;
    list.appendChild(item);
  }

  var form = document.getElementById("campaign-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = document.getElementById("campaign-name");
      var name = input.value.trim() || "Untitled campaign";
      addItem(document.getElementById("campaign-list"), name);
      input.value = "";
      window.milepost.push(["track", "campaign_created", { name: name }]);
    });
  }

  var importButton = document.getElementById("import-contacts");
  if (importButton) {
    // The empty-state guide's call to action links to #import.
    window.addEventListener("hashchange", function () {
      if (location.hash === "#import") importButton.click();
    });
    importButton.addEventListener("click", function () {
      var empty = document.getElementById("contacts-empty");
      if (empty) empty.remove();
      var list = document.getElementById("contact-list");
      ["Ada Lovelace", "Grace Hopper", "Alan Turing"].forEach(function (name) {
        addItem(list, name);
      });
      window.milepost.push(["track", "contacts_imported", { count: 3 }]);
    });
  }
})();
