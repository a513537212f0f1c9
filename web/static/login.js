/* Code page: say whether the emailed code went out, or could not be sent (then: send a new one). */
(function () {
  "use strict";

  const MESSAGES = {
    sending: "Sending the email…",
    sent: "The email has been sent. Check your inbox (and the spam folder).",
    failed: "We could not send the email. Try again: click “Send a new code”.",
  };

  document.addEventListener("DOMContentLoaded", function () {
    const line = document.getElementById("delivery");
    if (!line) return;
    let tries = 0;

    async function poll() {
      tries += 1;
      let state = null;
      try {
        const response = await fetch(line.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) state = (await response.json()).delivery;
      } catch (err) {
        state = null;
      }
      if (state && MESSAGES[state]) {
        line.textContent = MESSAGES[state];
        line.classList.toggle("alert", state === "failed");
        line.classList.toggle("alert-error", state === "failed");
      }
      // Retries of a refused email can take minutes; stop asking after about ten.
      if ((state === "sending" || state === null) && tries < 300) window.setTimeout(poll, 2000);
    }
    poll();
  });
})();
