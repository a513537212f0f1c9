/* Create from file: drop or browse for a file, Upload it to the API, then open its mapping page. */
(function () {
  "use strict";
  const { api, errorMessage, show } = window.Dialer;

  function describe(file) {
    const kb = file.size / 1024;
    const size = kb < 1024 ? Math.max(1, Math.round(kb)) + " KB" : (kb / 1024).toFixed(1) + " MB";
    return "Chosen: " + file.name + " (" + size + ")";
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("upload-form");
    const input = document.getElementById("file");
    const zone = document.getElementById("dropzone");
    const chosen = document.getElementById("chosen-file");
    const errorBox = document.getElementById("upload-error");
    const button = document.getElementById("upload-button");

    function setError(message) {
      errorBox.textContent = message || "";
      show(errorBox, Boolean(message));
      zone.classList.toggle("has-error", Boolean(message));
    }

    input.addEventListener("change", function () {
      setError("");
      chosen.textContent = input.files.length ? describe(input.files[0]) : "No file chosen.";
      zone.classList.toggle("has-file", input.files.length > 0);
    });

    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("dragover");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragover"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    });

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (!input.files.length) {
        setError("Choose a CSV or XLSX file first: drag and drop it here or browse for it.");
        input.focus();
        return;
      }
      setError("");
      button.disabled = true;
      button.textContent = "Uploading…";
      const data = new FormData();
      data.append("file", input.files[0]);
      const result = await api("POST", "/api/v1/uploads", data);
      if (result.status === 201 && result.data && result.data.upload_id) {
        window.location.assign("/imports/new/" + encodeURIComponent(result.data.upload_id));
        return;
      }
      button.disabled = false;
      button.textContent = "Upload";
      setError(errorMessage(result));
    });

    // The page ships Upload disabled, so a click before this script ran cannot post the form natively.
    button.disabled = false;
  });
})();
