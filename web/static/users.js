/* Users tab: Reset password shows the new temporary password once, in a dialog. */
(function () {
  "use strict";
  const { api, errorMessage, show } = window.Dialer;

  document.addEventListener("DOMContentLoaded", function () {
    const dialog = document.getElementById("reset-dialog");
    if (!dialog) return;
    const go = dialog.querySelector(".reset-go");
    const copy = dialog.querySelector(".reset-copy");
    const close = dialog.querySelector(".reset-close");
    const output = dialog.querySelector("#temporary-password");
    const errorBox = dialog.querySelector(".reset-error");
    let userId = null;
    let opener = null;

    document.querySelectorAll(".reset-password").forEach(function (button) {
      button.addEventListener("click", function () {
        opener = button;
        userId = button.dataset.userId;
        dialog.querySelectorAll(".reset-username").forEach(function (n) { n.textContent = button.dataset.username; });
        output.textContent = "";
        show(dialog.querySelector(".reset-confirm"), true);
        show(dialog.querySelector(".reset-result"), false);
        show(errorBox, false);
        show(go, true);
        show(copy, false);
        go.disabled = false;
        close.textContent = "Cancel";
        dialog.showModal();
        go.focus();
      });
      button.disabled = false;  // shipped disabled until this handler is bound
    });

    go.addEventListener("click", async function () {
      go.disabled = true;
      const result = await api("POST", "/api/v1/users/" + encodeURIComponent(userId) + "/reset-password");
      if (!result.ok) {
        errorBox.textContent = errorMessage(result);
        show(errorBox, true);
        go.disabled = false;
        return;
      }
      output.textContent = result.data.temporary_password;
      show(dialog.querySelector(".reset-confirm"), false);
      show(dialog.querySelector(".reset-result"), true);
      show(go, false);
      show(copy, Boolean(navigator.clipboard));
      close.textContent = "Close";
      close.focus();
    });

    copy.addEventListener("click", async function () {
      try {
        await navigator.clipboard.writeText(output.textContent);
        copy.textContent = "Copied";
      } catch (err) {
        copy.textContent = "Select and copy it by hand";
      }
    });
    go.disabled = false;
    copy.disabled = false;

    // The password lives only in this dialog: wipe it as the dialog closes (button or Escape).
    function wipe() {
      output.textContent = "";
      copy.textContent = "Copy";
    }
    close.addEventListener("click", wipe);
    dialog.addEventListener("close", function () {
      wipe();
      if (opener) opener.focus();
    });
  });
})();

/* Users tab: Unlock lifts a lock left by failed logins. */
(function () {
  "use strict";
  const { api, errorMessage, show } = window.Dialer;

  document.addEventListener("DOMContentLoaded", function () {
    const errorBox = document.getElementById("users-error");
    document.querySelectorAll(".unlock-user").forEach(function (button) {
      button.addEventListener("click", async function () {
        button.disabled = true;
        const result = await api("POST", "/api/v1/users/" + encodeURIComponent(button.dataset.userId) + "/unlock");
        if (!result.ok) {
          errorBox.textContent = errorMessage(result);
          show(errorBox, true);
          button.disabled = false;
          return;
        }
        const row = button.closest("tr");
        row.querySelector(".lock-state").textContent = "No";
        button.remove();
        row.querySelector(".reset-password").focus();
      });
      button.disabled = false;  // shipped disabled until this handler is bound
    });
  });
})();

/* Users tab: Resend emails a user who has not accepted their invitation a new link (the old one stops working). */
(function () {
  "use strict";
  const { api, errorMessage, show } = window.Dialer;

  document.addEventListener("DOMContentLoaded", function () {
    const errorBox = document.getElementById("users-error");
    document.querySelectorAll(".resend-invitation").forEach(function (button) {
      button.addEventListener("click", async function () {
        button.disabled = true;
        const result = await api("POST", "/api/v1/users/" + encodeURIComponent(button.dataset.userId) + "/resend-invitation");
        if (!result.ok) {
          errorBox.textContent = errorMessage(result);
          show(errorBox, true);
          button.disabled = false;
          return;
        }
        const badge = button.closest("tr").querySelector(".invitation-state");
        badge.className = "status status-invitation-" + result.data.invitation + " invitation-state";
        badge.textContent = result.data.invitation;  // pending: the new mail is on its way
        button.textContent = "Resent";
      });
      button.disabled = false;  // shipped disabled until this handler is bound
    });
  });
})();
