/* Import page: Regenerate passwords and Undo import (each confirmed in a dialog that names how many users),
   an import by invitation's counts and Resend invitations, and the chain of retries. Follows the status that import.js reads; buttons ship disabled until bound. */
(function () {
  "use strict";
  const { api, el, errorMessage, show } = window.Dialer;
  const ENDED = ["succeeded", "failed", "cancelled"];
  const $ = (id) => document.getElementById(id);
  const STATES = ["pending", "sent", "failed", "accepted", "expired"];
  const FAILURES_LISTED = 100;  // at most this many failures are listed (shared/imports/inviting.py: failures)
  const invites = Boolean(document.getElementById("invitations"));
  let importId = null, current = null, resent = null;

  function importUrl(id) { return "/imports/" + encodeURIComponent(id); }

  /* Until when an ended import can be undone: UNDO_WINDOW_HOURS after it ended. */
  function undoUntil(status) {
    if (!status.finished_at) return null;
    const hours = Number($("import-page").dataset.undoWindowHours);
    return new Date(Date.parse(status.finished_at) + hours * 3600 * 1000);
  }

  function windowOpen(status) {
    const until = undoUntil(status);
    return !until || Date.now() < until.getTime();
  }

  function update(status) {
    current = status;
    const ended = ENDED.includes(status.status);
    const acting = status.status === "undoing" || status.regenerating;
    const stopped = status.status === "undoing" && Boolean(status.error);
    show($("manage"), (ended && (status.created || 0) > 0) || status.status === "undoing" || status.status === "undone");
    // Regenerate: an ended import with users; the line says how far a regeneration got.
    // Its row data expired: success.csv would have no usernames, so reset passwords on the Users page.
    // An import by invitation has no temporary passwords to regenerate: its users get new links instead.
    show($("regenerate-action"), ended && (status.created || 0) > 0 && !status.row_data_expired && !invites);
    $("regenerate").disabled = acting;
    let regenerated = "";
    if (status.regenerating) {
      regenerated = "Making new passwords: " + (status.regenerated || 0) + " users done…";
    } else if (status.passwords_regenerated_at && status.links && status.links.success) {
      regenerated = "New passwords were made for " + (status.regenerated || 0) +
        " users: download the success details above, then click Continue.";
    }
    $("regenerate-status").textContent = regenerated;
    // Undo: within the window, once; an undo stopped by an error is taken up again.
    const open = ended && windowOpen(status);
    const until = undoUntil(status);
    if (until) {
      $("undo-until").dateTime = until.toISOString();
      $("undo-until").textContent = until.toLocaleString();
    }
    show($("undo-window"), open && Boolean(until));
    show($("undo-action"), open || status.status === "undoing" || status.status === "undone");
    show($("undo"), open || stopped);
    $("undo").disabled = acting && !stopped;
    $("undo").textContent = stopped ? "Undo again" : "Undo import";
    let undoLine = "";
    if (status.status === "undoing") undoLine = "Removing users: " + (status.undone || 0) + " removed so far…";
    if (status.status === "undone") undoLine = "Undone: " + (status.undone || 0) + " users were removed.";
    $("undo-status").textContent = undoLine;
    // Errors of an undo or a regeneration (a failed import's own error is shown above by import.js).
    const own = status.error && status.status !== "failed";
    $("manage-error").textContent = own ? status.error : "";
    show($("manage-error"), Boolean(own));
    chain(status);
    if (invites) invitationsOf(status);
  }

  /* How many users of the import have an invitation not accepted yet: whom a resend mails. */
  function waiting(counts) {
    return (counts.pending || 0) + (counts.sent || 0) + (counts.failed || 0) + (counts.expired || 0);
  }

  function invitationsOf(status) {
    const counts = status.invitations;
    if (!counts) return;  // a status published mid-import has none yet
    const total = waiting(counts) + (counts.accepted || 0);
    show($("invitations"), total > 0);
    STATES.forEach((state) => { $("invitations-" + state).textContent = counts[state] || 0; });
    show($("invitations-pending-item"), (counts.pending || 0) > 0);
    let line = "";
    const chosen = counts.accepted + " of " + total + " users have chosen their password.";
    if (counts.pending > 0) line = "Sending the invitations: " + counts.pending + " on their way…";
    else if (resent !== null) line = "New invitations went to " + resent + " user" + (resent === 1 ? "" : "s") + "; " + chosen;
    else if (total > 0) line = chosen;
    $("invitations-status").textContent = line;
    // The failures' reasons were read with the page: say when they no longer match the count.
    const listed = Number($("invitation-failures").dataset.count);
    const failed = counts.failed || 0;
    show($("failures-changed"), failed !== listed && !(listed >= FAILURES_LISTED && failed >= listed));
    // A resend is for an ended import with someone left to accept, once the mails on their way went.
    const ended = ENDED.includes(status.status);
    show($("resend-action"), ended && waiting(counts) > 0);
    $("resend-invitations").disabled = counts.pending > 0;
  }

  /* Whom Resend invitations mails: those not accepted, less the mails already on their way. */
  function resendable() {
    const counts = (current && current.invitations) || {};
    return waiting(counts) - (counts.pending || 0);
  }

  function bindResend() {
    confirmAction($("resend-invitations"), $("resend-dialog"), $("resend-count"), $("resend-go"),
      "/resend-invitations", null, {
        count: async () => resendable(),
        // The users just invited again; the new mails' counts come as the workers send them.
        done: (status) => { resent = (status.invitations || {}).pending || 0; },
      });
  }

  function chain(status) {
    const retried = status.retried_by || [];
    show($("retry-chain"), Boolean(status.retry_of) || retried.length > 0);
    show($("retry-of"), Boolean(status.retry_of));
    if (status.retry_of) {
      $("retry-of-link").href = importUrl(status.retry_of);
      $("retry-of-link").textContent = "import " + status.retry_of.slice(0, 8);
    }
    show($("retried-by"), retried.length > 0);
    $("retried-by-links").replaceChildren(...retried.flatMap((id, i) => [
      ...(i ? [", "] : []), el("a", { href: importUrl(id), text: "import " + id.slice(0, 8) }),
    ]));
  }

  /* How many users of the import still exist: what the dialogs name. */
  async function usersLeft() {
    const result = await api("GET", "/api/v1/users?per_page=1&import_id=" + encodeURIComponent(importId));
    return result.ok ? result.data.total : null;
  }

  /* A confirmation dialog that names the count (the import's users left, unless `options.count` says
     otherwise), then POSTs the action, tells `options.done` and follows the import again. */
  function confirmAction(opener, dialog, countNode, go, path, label, options = {}) {
    const errorBox = dialog.querySelector("[role=alert]");
    const count = options.count || usersLeft;
    opener.addEventListener("click", async function () {
      opener.disabled = true;
      const left = await count();
      opener.disabled = false;
      countNode.textContent = left === null ? "the" : String(left);
      if (label) go.textContent = label(left);
      show(errorBox, false);
      go.disabled = false;
      dialog.showModal();
      go.focus();
    });
    go.addEventListener("click", async function () {
      go.disabled = true;
      const result = await api("POST", "/api/v1/imports/" + encodeURIComponent(importId) + path);
      if (!result.ok) {
        errorBox.textContent = errorMessage(result);
        show(errorBox, true);
        return;
      }
      dialog.close();
      if (options.done) options.done(result.data);
      update(result.data);
      window.DialerImport.follow();
    });
    dialog.addEventListener("close", () => opener.focus());
    opener.disabled = Boolean(current && (current.status === "undoing" || current.regenerating));
  }

  document.addEventListener("import:status", (event) => update(event.detail));

  document.addEventListener("DOMContentLoaded", function () {
    importId = $("import-page").dataset.importId;
    if (invites) bindResend();
    confirmAction($("regenerate"), $("regenerate-dialog"), $("regenerate-count"), $("regenerate-go"),
      "/regenerate-passwords", null);
    confirmAction($("undo"), $("undo-dialog"), $("undo-count"), $("undo-go"), "/undo",
      (left) => left === null ? "Remove the users" : "Remove " + left + " user" + (left === 1 ? "" : "s"));
  });
})();
