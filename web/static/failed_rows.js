/* Import page: the error and duplicate rows in a paged table, corrected in place (each change checked through
   the API as it is typed), then Retry failed rows starts a new import of them with the same mapping. */
(function () {
  "use strict";
  const { api, el, errorMessage, show } = window.Dialer;
  const ENDED = ["succeeded", "failed", "cancelled"];
  const CHECK_DELAY_MS = 250;
  const $ = (id) => document.getElementById(id);
  let importId = null, perPage = 20, page = 1, total = 0, columns = [], loaded = false;
  const originals = new Map();   // row -> its cells as in the file
  const fixes = new Map();       // row -> {column: corrected text}, only cells that differ
  const checked = new Map();     // row -> the newest answer of the check endpoint
  const pending = new Map();     // row -> [timer, sequence number]
  const shown = new Map();       // row -> problems first listed with the row

  function base() { return "/api/v1/imports/" + encodeURIComponent(importId); }

  function update(status) {
    const failed = (status.errors || 0) + (status.duplicates || 0);
    const open = ENDED.includes(status.status) && failed > 0 && !status.row_data_expired;
    show($("failed-rows"), open);
    if (open && !loaded) {
      loaded = true;
      load(1);
    }
  }

  async function load(wanted) {
    const query = "?status=error,duplicate&page=" + wanted + "&per_page=" + perPage;
    const result = await api("GET", base() + "/rows" + query);
    if (!result.ok) {
      $("rows-status").textContent = errorMessage(result);
      return;
    }
    page = result.data.page;
    total = result.data.total;
    columns = result.data.columns;
    result.data.items.forEach((item) => {
      originals.set(item.row, item.values);
      if (!shown.has(item.row)) shown.set(item.row, { status: item.status, problems: item.problems });
    });
    render(result.data.items);
  }

  function render(items) {
    const table = $("failed-table");
    const caption = table.querySelector("caption");
    const head = el("tr", {}, [
      el("th", { scope: "col", text: "Row" }), el("th", { scope: "col", text: "Status" }),
      ...columns.map((c) => el("th", { scope: "col", text: c })), el("th", { scope: "col", text: "Other problems" }),
    ]);
    const body = el("tbody", {}, items.map(rowLine));
    table.replaceChildren(caption, el("thead", {}, [head]), body);
    const pages = Math.max(1, Math.ceil(total / perPage));
    $("rows-page").textContent = "Page " + page + " of " + pages;
    show($("rows-pages"), pages > 1);
    $("rows-prev").disabled = page <= 1;
    $("rows-next").disabled = page >= pages;
    $("rows-status").textContent = total + " row" + (total === 1 ? "" : "s") + " to fix or retry" +
      (pages > 1 ? " (" + perPage + " a page)" : "") + ".";
    note();
  }

  function rowLine(item) {
    const row = item.row;
    const cells = columns.map((column) => {
      const value = (fixes.get(row) || {})[column] ?? item.values[column] ?? "";
      const input = el("input", {
        type: "text", value: value, "aria-label": column + " of row " + row,
        dataset: { row: String(row), column: column },
      });
      input.addEventListener("input", () => edited(row, column, input.value));
      return el("td", { class: "fix-cell" }, [input, el("ul", { class: "cell-problems", dataset: { for: column } })]);
    });
    const tr = el("tr", { dataset: { row: String(row) } }, [
      el("td", { class: "id", text: String(row) }),
      el("td", {}, [el("span", { class: "status status-" + item.status, text: item.status })]),
      ...cells,
      el("td", {}, [el("ul", { class: "cell-problems", dataset: { for: "" } })]),
    ]);
    paint(tr, row);
    return tr;
  }

  /* Each problem beside its cell (or under Other problems), from the newest check or the import's own. */
  function paint(tr, row) {
    const answer = checked.get(row);
    const problems = answer ? answer.problems : shown.get(row).problems;
    tr.querySelectorAll("ul.cell-problems").forEach((list) => {
      const other = list.dataset.for === "";
      const mine = problems.filter((p) => other ? !columns.includes(p.column) : p.column === list.dataset.for);
      list.replaceChildren(...mine.map((p) => el("li", { class: "field-error", text: p.message })));
      const input = list.parentElement.querySelector("input");
      if (!input) return;
      if (mine.length) {
        input.setAttribute("aria-invalid", "true");
      } else {
        input.removeAttribute("aria-invalid");
      }
      list.id = "problems-" + row + "-" + columns.indexOf(input.dataset.column);
      input.setAttribute("aria-describedby", list.id);
    });
    const ready = answer && answer.valid;
    tr.classList.toggle("row-ready", Boolean(ready));
    const badge = tr.querySelector(".status");
    badge.textContent = ready ? "ready" : shown.get(row).status;
    badge.className = "status status-" + (ready ? "ready" : shown.get(row).status);
  }

  function edited(row, column, value) {
    const changes = Object.assign({}, fixes.get(row));
    if (value === (originals.get(row) || {})[column]) delete changes[column];
    else changes[column] = value;
    if (Object.keys(changes).length) fixes.set(row, changes);
    else fixes.delete(row);
    note();
    const [timer, sequence] = pending.get(row) || [null, 0];
    clearTimeout(timer);
    pending.set(row, [setTimeout(() => check(row, sequence + 1), CHECK_DELAY_MS), sequence + 1]);
  }

  async function check(row, sequence) {
    const result = await api("POST", base() + "/rows/" + row + "/check", { values: fixes.get(row) || {} });
    if ((pending.get(row) || [null, 0])[1] !== sequence) return;  // a newer edit is being checked
    pending.delete(row);
    if (result.ok) checked.set(row, result.data);
    const tr = $("failed-table").querySelector('tr[data-row="' + row + '"]');
    if (tr) paint(tr, row);
    note();
  }

  function note() {
    const ready = [...checked.values()].filter((a) => a.valid).length;
    $("retry-note").textContent = fixes.size + " of " + total + " rows corrected" +
      (ready ? ", " + ready + " ready" : "") + (pending.size ? "; checking…" : ".");
  }

  async function retry() {
    const button = $("retry");
    button.disabled = true;
    show($("retry-error"), false);
    const rows = [...fixes.entries()].map(([row, values]) => ({ row: row, values: values }));
    const result = await api("POST", base() + "/retry", { rows: rows });
    if (result.status === 202 && result.data && result.data.id) {
      window.location.assign("/imports/" + encodeURIComponent(result.data.id));
      return;
    }
    const details = (result.data && result.data.error && result.data.error.details) || [];
    const box = $("retry-error");
    box.replaceChildren(el("p", { class: "summary-title", text: errorMessage(result) }));
    if (Array.isArray(details) && details.length) {
      box.append(el("ul", {}, details.map((d) => el("li", { text: d.message || String(d) }))));
    }
    show(box, true);
    box.focus();
    button.disabled = false;
  }

  document.addEventListener("import:status", (event) => update(event.detail));

  document.addEventListener("DOMContentLoaded", function () {
    importId = $("import-page").dataset.importId;
    const wanted = Number(new URLSearchParams(window.location.search).get("per_page"));
    if (Number.isInteger(wanted) && wanted >= 1 && wanted <= 200) perPage = wanted;
    $("rows-prev").addEventListener("click", () => load(page - 1));
    $("rows-next").addEventListener("click", () => load(page + 1));
    $("retry").addEventListener("click", retry);
    $("retry").disabled = false;
  });
})();
