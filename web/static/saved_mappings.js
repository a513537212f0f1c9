/* Mapping page: Save this mapping (by name), and the saved mappings: Apply one whose columns the file has, Delete. */
(function () {
  "use strict";
  const { api, el, errorMessage, show } = window.Dialer;
  const $ = (id) => document.getElementById(id);
  let headers = [];

  function setError(message) {
    $("save-error").textContent = message || "";
    show($("save-error"), Boolean(message));
    if (message) $("mapping-name").setAttribute("aria-invalid", "true");
    else $("mapping-name").removeAttribute("aria-invalid");
  }

  async function refresh() {
    const result = await api("GET", "/api/v1/mappings");
    if (!result.ok) {
      $("save-status").textContent = "Could not load the saved mappings: " + errorMessage(result);
      return;
    }
    const items = result.data.items;
    $("saved-list").replaceChildren(...items.map(line));
    show($("saved-empty"), items.length === 0);
  }

  function line(saved) {
    const missing = saved.columns.filter((c) => !headers.includes(c));
    const applyButton = el("button", {
      type: "button", class: "btn btn-small btn-secondary", text: "Apply",
      "aria-label": "Apply " + saved.name, title: missing.length ? "This file has no column " + missing.join(", ") : null,
    });
    applyButton.disabled = missing.length > 0;
    applyButton.addEventListener("click", () => {
      window.DialerMapping.clearErrors();
      window.DialerMapping.apply(saved.mapping);
      window.DialerMapping.mappedAs(saved.name, []);
    });
    const remove = el("button", {
      type: "button", class: "btn btn-small btn-danger", text: "Delete", "aria-label": "Delete " + saved.name,
    });
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      const result = await api("DELETE", "/api/v1/mappings/" + encodeURIComponent(saved.id));
      if (!result.ok && result.status !== 404) {
        $("save-status").textContent = errorMessage(result);
        remove.disabled = false;
        return;
      }
      $("save-status").textContent = "Deleted the saved mapping “" + saved.name + "”.";
      refresh();
    });
    return el("li", {}, [
      el("span", {}, [el("strong", { text: saved.name }),
        el("span", { class: "saved-columns", text: "Columns: " + saved.columns.join(", ") })]),
      el("span", { class: "actions-inline" }, [applyButton, " ", remove]),
    ]);
  }

  async function save(event) {
    event.preventDefault();
    setError("");
    const name = $("mapping-name").value.trim();
    if (!name) {
      setError("Give the mapping a name first.");
      $("mapping-name").focus();
      return;
    }
    const button = $("save-mapping");
    button.disabled = true;
    window.DialerMapping.clearErrors();
    const result = await api("POST", "/api/v1/mappings", { name: name, mapping: window.DialerMapping.build() });
    button.disabled = false;
    if (result.ok) {
      $("save-status").textContent = (result.status === 201 ? "Saved" : "Saved again") + " as “" + result.data.name +
        "”: the next file with these columns is mapped this way.";
      refresh();
      return;
    }
    if (result.status === 422 && result.data.error.code === "invalid_mapping") {
      window.DialerMapping.showProblems(result);  // beside each field, as Import Users does
    } else {
      setError(errorMessage(result));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("save-mapping-form").addEventListener("submit", save);
  });

  // Saving reads the page's choices: possible once mapping.js has filled them.
  document.addEventListener("mapping:loaded", (event) => {
    headers = event.detail.headers || [];
    $("save-mapping").disabled = false;
    refresh();
  });
})();
