/* Import page: live progress (Server-Sent Events, else polling every second) and the Upload Result. */
(function () {
  "use strict";
  const { api, errorMessage, show } = window.Dialer;
  const FINAL = ["succeeded", "failed", "cancelled", "undone"];
  const RUNNING = ["queued", "validating", "running"];
  const STATUS_TEXT = {
    queued: "Queued: waiting for a worker…",
    validating: "Validating the rows…",
    running: "Creating users…",
    succeeded: "Finished.",
    failed: "The import failed.",
    cancelled: "Cancelled.",
    undoing: "Undoing: removing the users of this import…",
    undone: "Undone: the users of this import were removed.",
  };
  // Nothing moves the status on by itself any more (an undo, a regeneration or a resend may start it
  // again); invitation mails still on their way move it on (as shared/imports/progress.py: settled).
  const mailing = (status) => ((status.invitations || {}).pending || 0) > 0;
  const settled = (status) => FINAL.includes(status.status) && !status.regenerating && !mailing(status);

  const $ = (id) => document.getElementById(id);
  let page, importId, dryRun, source = null, pollTimer = null, finished = false, focused = false;

  function render(status) {
    if (finished) return;
    const percent = Math.max(0, Math.min(100, Math.round(status.percent || 0)));
    const bar = $("progress");
    bar.value = percent;
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", percent + " %");
    $("percent").textContent = percent + " %";
    $("count-processed").textContent = status.processed ?? 0;
    $("count-total").textContent = status.total ?? 0;
    $("count-created").textContent = status.created ?? 0;
    $("count-duplicates").textContent = status.duplicates ?? 0;
    $("count-errors").textContent = status.errors ?? 0;
    $("status-text").textContent = STATUS_TEXT[status.status] || status.status;
    page.dataset.status = status.status;
    show($("cancel"), RUNNING.includes(status.status) && !status.cancel_requested);
    if (!RUNNING.includes(status.status)) renderFinal(status);
    // The page's other scripts (undo, regenerate, failed rows) follow the same status.
    document.dispatchEvent(new CustomEvent("import:status", { detail: status }));
    if (settled(status)) {
      finished = true;
      stop();
    }
  }

  function renderFinal(status) {
    const links = status.links || {};
    if (status.status === "failed") {
      $("job-error").textContent = status.error || "The file could not be processed.";
      show($("job-error"), true);
      show($("try-again"), true);
      // Users created before the failure keep their temporary passwords: show them like any result.
      if (!(status.created > 0)) return;
    }
    $("result-created").textContent = status.created ?? 0;
    $("result-duplicates").textContent = status.duplicates ?? 0;
    $("result-errors").textContent = status.errors ?? 0;
    show($("cancelled-note"), status.status === "cancelled");
    show($("failed-note"), status.status === "failed");
    const undo = status.status === "undoing" || status.status === "undone";
    if ($("undone-note")) {
      $("undone-count").textContent = status.undone ?? 0;
      show($("undone-note"), undo);
    }
    const errors = $("download-errors");
    if (links.errors) errors.href = links.errors;
    show(errors, Boolean(links.errors) && !status.row_data_expired);
    show($("data-expired"), Boolean(status.row_data_expired));
    const success = $("download-success");
    if (links.success && !dryRun) success.href = links.success;
    show(success, Boolean(links.success) && !dryRun);
    show($("password-warning"), Boolean(links.success) && !dryRun);
    show($("passwords-gone"), !links.success && !dryRun && (status.created || 0) > 0 && !undo && !status.regenerating && !status.row_data_expired);
    show($("result"), true);
    if (!focused) {
      focused = true;
      $("result-heading").setAttribute("tabindex", "-1");
      $("result-heading").focus();
    }
  }

  /* Follow the status again after an action started new work (undo, regeneration). */
  function follow() {
    finished = false;
    stop();
    listen();
  }
  window.DialerImport = { follow: follow };

  function stop() {
    if (source) { source.close(); source = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  async function poll() {
    pollTimer = null;
    const result = await api("GET", "/api/v1/imports/" + encodeURIComponent(importId));
    if (result.ok) render(result.data);
    if (!finished) pollTimer = setTimeout(poll, 1000);
  }

  function startPolling() {
    if (source) { source.close(); source = null; }
    if (!finished && !pollTimer) pollTimer = setTimeout(poll, 1000);
  }

  function listen() {
    if (!window.EventSource) { startPolling(); return; }
    source = new EventSource("/api/v1/imports/" + encodeURIComponent(importId) + "/events", { withCredentials: true });
    source.addEventListener("progress", (event) => {
      try { render(JSON.parse(event.data)); } catch (err) { /* a damaged event: the next one or polling will do */ }
    });
    // A stream that breaks before the final status: fall back to asking every second.
    source.onerror = () => { if (!finished) startPolling(); };
  }

  async function cancel() {
    $("cancel").disabled = true;
    const result = await api("POST", "/api/v1/imports/" + encodeURIComponent(importId) + "/cancel");
    if (!result.ok) {
      $("action-error").textContent = errorMessage(result);
      show($("action-error"), true);
      $("cancel").disabled = false;
      return;
    }
    $("status-text").textContent = "Cancelling…";
    show($("cancel"), false);
  }

  async function proceed() {
    if (dryRun) { window.location.assign(page.dataset.mappingUrl); return; }
    // An import by invitation kept no password: there is nothing to acknowledge (and destroy).
    if (page.dataset.credentials === "invitation") { window.location.assign(page.dataset.usersUrl); return; }
    const button = $("continue");
    button.disabled = true;
    const result = await api("POST", "/api/v1/imports/" + encodeURIComponent(importId) + "/acknowledge");
    if (!result.ok) {
      $("action-error").textContent = errorMessage(result);
      show($("action-error"), true);
      button.disabled = false;
      return;
    }
    window.location.assign(page.dataset.usersUrl);
  }

  document.addEventListener("DOMContentLoaded", async function () {
    page = $("import-page");
    importId = page.dataset.importId;
    dryRun = page.dataset.dryRun === "true";
    $("cancel").addEventListener("click", cancel);
    $("continue").addEventListener("click", proceed);
    // Shipped disabled, so that nothing is clicked before it does something.
    $("cancel").disabled = false;
    $("continue").disabled = false;
    // Read the job first: a reload of a finished import shows its result at once.
    const first = await api("GET", "/api/v1/imports/" + encodeURIComponent(importId));
    if (first.ok) render(first.data);
    else {
      $("status-text").textContent = errorMessage(first);
    }
    if (!finished) listen();
  });
})();
