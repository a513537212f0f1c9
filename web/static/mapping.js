/* Mapping page: file columns -> user fields, as the mapping JSON of API.md; then Validate only or Import Users. */
(function () {
  "use strict";
  const { api, el, errorMessage, show } = window.Dialer;
  const COLUMN = "col:";  // option values: "col:<header>", "dialer", or "" (not mapped)
  const DIALER = "dialer";
  // The mapped fields come from the page (rendered from the field registry), the rest is fixed.
  const FIELDS = [...document.querySelectorAll("[data-field]")].map((node) => ({
    key: node.dataset.field,
    label: node.dataset.label,
    sources: node.dataset.sources.split(" "),
    many: node.dataset.many === "true",
    required: node.dataset.required === "true",
  }));
  const LABELS = Object.assign({
    sip: "SIP Settings", "sip.mode": "SIP Settings", "sip.domain_id": "PBX domain", "sip.device": "PBX device column",
    "sip.uri": "SIP URI column", auth_type: "Authentication type", security: "Advanced security settings",
    "security.allowed_networks": "Allowed IP networks", "security.session_timeout_minutes": "Session timeout",
    "security.force_password_change": "Force password change at first login",
    "security.lock_after_failed_logins": "Lock after N failed logins",
    digits_only_passwords: "Digits-only passwords", credentials: "How new users get their first password",
  }, Object.fromEntries(FIELDS.map((f) => [f.key, f.label])));
  // Where each mapping key's control is, for the summary's links.
  const CONTROLS = Object.assign({
    sip: "sip-webrtc", "sip.mode": "sip-webrtc", "sip.domain_id": "sip-domain", "sip.device": "sip-device",
    "sip.uri": "sip-uri", auth_type: "auth-default", security: "security-toggle",
    "security.allowed_networks": "sec-networks", "security.session_timeout_minutes": "sec-timeout",
    "security.force_password_change": "sec-force", "security.lock_after_failed_logins": "sec-lock",
    digits_only_passwords: "digits-only", credentials: "credentials-temporary_password",
  }, Object.fromEntries(FIELDS.map((f) => [f.key, "map-" + f.key])));

  const $ = (id) => document.getElementById(id);
  let uploadId = null;

  function fillColumns(select, headers, withDialer) {
    select.replaceChildren();
    if (select.dataset.empty) select.append(el("option", { value: "", text: select.dataset.empty }));
    if (withDialer) select.append(el("option", { value: DIALER, text: "From Dialer" }));
    const group = withDialer ? el("optgroup", { label: "File columns" }) : select;
    headers.forEach((h) => group.append(el("option", { value: COLUMN + h, text: h })));
    if (withDialer) select.append(group);
  }

  function fillEntities(select, items) {
    select.replaceChildren();
    if (select.dataset.empty) select.append(el("option", { value: "", text: select.dataset.empty }));
    items.forEach((item) => {
      const extra = item.domain ? " · " + item.domain : "";
      select.append(el("option", { value: String(item.id), text: item.name + extra + " (ID " + item.id + ")" }));
    });
  }

  function setColumn(select, source) {
    if (source && typeof source.column === "string") {
      const wanted = COLUMN + source.column;
      if ([...select.options].some((o) => o.value === wanted)) select.value = wanted;
    }
  }

  /* Role, Desk, Skill Groups: a column, or From Dialer with the chosen entities. */
  function setSource(key, source) {
    const select = $("map-" + key);
    const values = $("map-" + key + "-value");
    if (source && typeof source.column === "string") {
      setColumn(select, source);
    } else if (source && source.value !== undefined && source.value !== null) {
      select.value = DIALER;
      const wanted = (Array.isArray(source.value) ? source.value : [source.value]).map(String);
      [...values.options].forEach((o) => { o.selected = wanted.includes(o.value); });
    }
    syncSource(key);
  }

  function syncSource(key) {
    show($(key + "-dialer"), $("map-" + key).value === DIALER);
  }

  function syncGenerate(key) {
    const box = $("generate-" + key);
    if (box) $("map-" + key).disabled = box.checked;
  }

  function syncSip() {
    const mode = document.querySelector('input[name="sip-mode"]:checked').value;
    show($("sip-classic-fields"), mode === "classic_pbx");
    show($("sip-custom-fields"), mode === "custom_uri");
  }

  function syncSecurity() {
    const on = $("security-toggle").checked;
    $("security-toggle").setAttribute("aria-expanded", String(on));
    show($("security-fields"), on);
  }

  function apply(mapping) {
    FIELDS.forEach((f) => {
      const source = mapping[f.key] || {};
      if (f.sources.includes("generate")) $("generate-" + f.key).checked = source.generate === true;
      if (f.sources.includes("value")) setSource(f.key, mapping[f.key]);
      else setColumn($("map-" + f.key), source);
      syncGenerate(f.key);
    });
    const ext = mapping.extension || {};
    const sip = mapping.sip || { mode: "webrtc" };
    const radio = $("sip-" + sip.mode);
    if (radio) radio.checked = true;
    if (sip.domain_id !== undefined && sip.domain_id !== null) $("sip-domain").value = String(sip.domain_id);
    // The suggestion's "columns" hints (not part of the mapping) pre-select the SIP columns;
    // the PBX device falls back to the extension column, as the help page suggests.
    const hints = mapping.columns || {};
    const device = sip.device || (hints.device ? { column: hints.device } : ext.column ? { column: ext.column } : null);
    setColumn($("sip-device"), device);
    setColumn($("sip-uri"), sip.uri || (hints.sip_uri ? { column: hints.sip_uri } : null));
    const auth = $("auth-" + (mapping.auth_type || "default"));
    if (auth) auth.checked = true;
    const sec = mapping.security;
    $("security-toggle").checked = Boolean(sec);
    if (sec) {
      $("sec-networks").value = (sec.allowed_networks || []).join(", ");
      $("sec-timeout").value = sec.session_timeout_minutes ?? "";
      $("sec-lock").value = sec.lock_after_failed_logins ?? "";
      $("sec-force").checked = sec.force_password_change !== false;
    }
    $("digits-only").checked = mapping.digits_only_passwords === true;
    // A mapping saved before the choice existed gave temporary passwords (the API's default).
    const credentials = $("credentials-" + (mapping.credentials || "temporary_password"));
    if (credentials) credentials.checked = true;
    syncSip();
    syncSecurity();
  }

  function columnOf(select) {
    return select.value.startsWith(COLUMN) ? { column: select.value.slice(COLUMN.length) } : null;
  }

  function wholeNumber(input) {
    const raw = input.value.trim();
    return raw === "" ? null : Number(raw);
  }

  /* The mapping JSON of API.md; unmapped optional fields are left out. */
  function build() {
    const mapping = {};
    FIELDS.forEach((f) => {
      const select = $("map-" + f.key);
      const generate = $("generate-" + f.key);
      if (generate && generate.checked) {
        mapping[f.key] = { generate: true };
      } else if (select.value === DIALER) {
        const chosen = [...$("map-" + f.key + "-value").selectedOptions].map((o) => o.value).filter(Boolean).map(Number);
        if (chosen.length) mapping[f.key] = { value: f.many ? chosen : chosen[0] };
      } else if (columnOf(select)) {
        mapping[f.key] = columnOf(select);
      }
    });
    const mode = document.querySelector('input[name="sip-mode"]:checked').value;
    const sip = { mode: mode };
    if (mode === "classic_pbx") {
      if ($("sip-domain").value) sip.domain_id = Number($("sip-domain").value);
      if (columnOf($("sip-device"))) sip.device = columnOf($("sip-device"));
    } else if (mode === "custom_uri" && columnOf($("sip-uri"))) {
      sip.uri = columnOf($("sip-uri"));
    }
    mapping.sip = sip;
    mapping.auth_type = document.querySelector('input[name="auth-type"]:checked').value;
    if ($("security-toggle").checked) {
      const networks = $("sec-networks").value.split(",").map((s) => s.trim()).filter(Boolean);
      mapping.security = {
        allowed_networks: networks.length ? networks : null,
        session_timeout_minutes: wholeNumber($("sec-timeout")),
        force_password_change: $("sec-force").checked,
        lock_after_failed_logins: wholeNumber($("sec-lock")),
      };
    } else {
      mapping.security = null;
    }
    mapping.digits_only_passwords = $("digits-only").checked;
    mapping.credentials = document.querySelector('input[name="credentials"]:checked').value;
    return mapping;
  }

  function clearErrors() {
    document.querySelectorAll(".field-error").forEach((p) => { p.textContent = ""; show(p, false); });
    document.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    const summary = $("summary");
    summary.replaceChildren();
    show(summary, false);
  }

  function showSummary(title, items) {
    const summary = $("summary");
    summary.replaceChildren(el("p", { class: "summary-title", text: title }));
    if (items.length) summary.append(el("ul", {}, items));
    show(summary, true);
    summary.focus();
  }

  /* 422 invalid_mapping: every problem beside its field, and all of them at the top. */
  function showProblems(result) {
    const details = (result.data && result.data.error && result.data.error.details) || [];
    const problems = Array.isArray(details) ? details : [];
    const items = problems.map((problem) => {
      const field = String(problem.field || "");
      const box = document.querySelector('.field-error[data-error-for="' + CSS.escape(field) + '"]');
      if (box) {
        box.textContent = problem.message;
        show(box, true);
      }
      let control = $(CONTROLS[field] || "");
      if (control && control.classList.contains("source-select") && control.value === DIALER) {
        control = $(control.id + "-value");  // From Dialer: the problem is the chosen entity
      }
      if (control) control.setAttribute("aria-invalid", "true");
      const label = LABELS[field] || field;
      const head = control ? el("a", { href: "#" + control.id, text: label }) : el("strong", { text: label || "Mapping" });
      return el("li", {}, [head, ": " + problem.message]);
    });
    const n = problems.length;
    showSummary(n ? "The mapping has " + n + " problem" + (n === 1 ? "" : "s") + ". Fix " + (n === 1 ? "it" : "them") + " and try again."
      : errorMessage(result), items);
  }

  /* The mapping came from a saved one: say which, and put what it chose that is gone beside its field. */
  function mappedAs(name, problems) {
    $("suggested-name").textContent = name || "";
    show($("suggested-from"), Boolean(name));
    problems.forEach((problem) => {
      const box = document.querySelector('.field-error[data-error-for="' + CSS.escape(problem.field) + '"]');
      if (box) {
        box.textContent = problem.message;
        show(box, true);
      }
      let control = $(CONTROLS[problem.field] || "");
      if (control && control.classList.contains("source-select") && control.value === DIALER) {
        control = $(control.id + "-value");
      }
      if (control) control.setAttribute("aria-invalid", "true");
    });
  }

  async function submit(dryRun) {
    clearErrors();
    const mapping = build();
    const buttons = [$("validate-only"), $("import-users")];
    buttons.forEach((b) => { b.disabled = true; });
    $("mapping-form").setAttribute("aria-busy", "true");
    // Kept for this tab only, so that coming back from a validation restores the choices.
    sessionStorage.setItem("mapping:" + uploadId, JSON.stringify(mapping));
    const result = await api("POST", "/api/v1/imports", { upload_id: uploadId, mapping: mapping, dry_run: dryRun });
    $("mapping-form").removeAttribute("aria-busy");
    if (result.status === 202 && result.data && result.data.id) {
      window.location.assign("/imports/" + encodeURIComponent(result.data.id));
      return;
    }
    buttons.forEach((b) => { b.disabled = false; });
    if (result.status === 422) showProblems(result);
    else showSummary(errorMessage(result), []);
  }

  function renderPreview(upload) {
    const table = $("preview");
    const caption = table.querySelector("caption");
    table.replaceChildren(caption);
    const head = el("tr", {}, upload.headers.map((h) => el("th", { scope: "col", text: h })));
    table.append(el("thead", {}, [head]));
    const body = el("tbody");
    (upload.preview || []).forEach((row) => {
      body.append(el("tr", {}, upload.headers.map((h) => el("td", { text: row[h] === null || row[h] === undefined ? "" : String(row[h]) }))));
    });
    table.append(body);
    const shown = (upload.preview || []).length;
    $("load-status").textContent = "The first " + shown + " row" + (shown === 1 ? "" : "s") + " of the file:";
  }

  async function load() {
    const page = $("mapping-page");
    uploadId = page.dataset.uploadId;
    const kinds = [...new Set([...document.querySelectorAll("select[data-kind]")].map((s) => s.dataset.kind))];
    const [upload, ...lists] = await Promise.all([
      api("GET", "/api/v1/uploads/" + encodeURIComponent(uploadId)),
      ...kinds.map((kind) => api("GET", "/api/v1/" + kind)),
    ]);
    const failed = [upload, ...lists].find((r) => !r.ok);
    if (failed) {
      $("load-status").textContent = "";
      showSummary("Could not load the file or the Dialer's lists: " + errorMessage(failed), []);
      [$("validate-only"), $("import-users")].forEach((b) => { b.disabled = true; });
      return;
    }
    const items = Object.fromEntries(kinds.map((kind, i) => [kind, lists[i].data.items]));
    const headers = upload.data.headers || [];
    renderPreview(upload.data);
    document.querySelectorAll("select.column-select").forEach((s) => fillColumns(s, headers, false));
    document.querySelectorAll("select.source-select").forEach((s) => fillColumns(s, headers, true));
    document.querySelectorAll("select[data-kind]").forEach((s) => fillEntities(s, items[s.dataset.kind]));
    // A required field chosen in the dialer has no "not mapped": one entity for all unless a column is chosen.
    FIELDS.filter((f) => f.required && f.sources.includes("value")).forEach((f) => { $("map-" + f.key).value = DIALER; });
    let mapping = upload.data.suggested_mapping || {};
    let kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem("mapping:" + uploadId) || "null");
      if (kept) mapping = kept;
    } catch (err) { /* a damaged saved mapping: use the suggestion */ }
    apply(mapping);
    // The page ships both buttons disabled: they work only once the lists are filled and bound.
    [$("validate-only"), $("import-users")].forEach((b) => { b.disabled = false; });
    if (!kept) mappedAs(upload.data.suggested_from, upload.data.suggestion_problems || []);
    document.dispatchEvent(new CustomEvent("mapping:loaded", { detail: upload.data }));
  }

  // For the saved mappings on this page (saved_mappings.js).
  window.DialerMapping = { apply: apply, build: build, mappedAs: mappedAs, clearErrors: clearErrors, showProblems: showProblems };

  document.addEventListener("DOMContentLoaded", function () {
    FIELDS.forEach((f) => {
      if (f.sources.includes("value")) $("map-" + f.key).addEventListener("change", () => syncSource(f.key));
      const generate = $("generate-" + f.key);
      if (generate) generate.addEventListener("change", () => syncGenerate(f.key));
    });
    document.querySelectorAll('input[name="sip-mode"]').forEach((r) => r.addEventListener("change", syncSip));
    $("security-toggle").addEventListener("change", syncSecurity);
    $("validate-only").addEventListener("click", () => submit(true));
    $("mapping-form").addEventListener("submit", (event) => { event.preventDefault(); submit(false); });
    load();
  });
})();
