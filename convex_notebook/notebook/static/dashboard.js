// Dashboard front end (anywidget ESM, no imports). State comes from the kernel as traits;
// actions go back as custom messages: select_table, page, run, refresh, and (embedded
// backends) edit, delete, clear, cancel.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function table(columns, rows, actions) {
  const t = el("table", "cn-dash-table");
  const head = el("tr");
  for (const c of columns) head.append(el("th", c.startsWith("_") ? "cn-system" : "", c));
  if (actions) head.append(el("th", "cn-actions", ""));
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    if (row.key !== undefined) tr.dataset.cnKey = row.key;
    for (const cell of row.cells) {
      const td = el("td", cell === null ? "cn-missing" : cell === "null" ? "cn-null" : "", cell === null ? "" : cell);
      tr.append(td);
    }
    if (actions) {
      const td = el("td", "cn-actions");
      for (const button of actions(row)) td.append(button);
      tr.append(td);
    }
    tbody.append(tr);
  }
  t.append(thead, tbody);
  return t;
}

function render({ model, el: host }) {
  const root = el("div", "cn-dash");
  const header = el("div", "cn-dash-header");
  const title = el("span", "cn-dash-title");
  const refresh = el("button", "cn-dash-refresh", "refresh");
  refresh.addEventListener("click", () => model.send({ type: "refresh" }));
  const notice = el("span", "cn-dash-notice");
  header.append(title, refresh, notice);
  const tabs = el("div", "cn-dash-tabs");
  const body = el("div", "cn-dash-body");
  root.append(header, tabs, body);
  host.append(root);

  const panels = {
    Data: el("div", "cn-panel cn-panel-data"),
    Functions: el("div", "cn-panel cn-panel-functions"),
    Logs: el("div", "cn-panel cn-panel-logs"),
    Schedules: el("div", "cn-panel cn-panel-schedules"),
    Crons: el("div", "cn-panel cn-panel-crons"),
    Files: el("div", "cn-panel cn-panel-files"),
    Environment: el("div", "cn-panel cn-panel-env"),
  };
  let current = "Data";
  const tabButtons = {};
  for (const name of Object.keys(panels)) {
    const b = el("button", "cn-tab", name);
    b.dataset.tab = name;
    b.addEventListener("click", () => {
      current = name;
      show();
    });
    tabButtons[name] = b;
    tabs.append(b);
    body.append(panels[name]);
  }
  function show() {
    for (const [name, panel] of Object.entries(panels)) {
      panel.style.display = name === current ? "" : "none";
      tabButtons[name].classList.toggle("cn-tab-active", name === current);
    }
  }

  // -- Data -------------------------------------------------------------------------------
  function drawData() {
    const panel = panels.Data;
    panel.replaceChildren();
    const tables = model.get("_tables");
    const page = model.get("_browser") || {};
    const side = el("ul", "cn-dash-tables");
    if (!tables.length) side.append(el("li", "cn-empty", "no tables yet"));
    for (const t of tables) {
      const li = el("li", t.name === page.table ? "cn-selected" : "");
      li.dataset.table = t.name;
      li.append(el("span", "cn-name", t.name), el("span", "cn-count", t.count.toLocaleString("en-US")));
      li.addEventListener("click", () => model.send({ type: "select_table", table: t.name }));
      side.append(li);
    }
    const main = el("div", "cn-dash-docs");
    if (page.error) main.append(el("div", "cn-error", page.error));
    if (page.table && !page.error) {
      const nav = el("div", "cn-dash-nav");
      const prev = el("button", "cn-prev", "‹ newer");
      prev.disabled = !page.has_prev;
      prev.addEventListener("click", () => model.send({ type: "page", direction: "prev" }));
      const next = el("button", "cn-next", "older ›");
      next.disabled = !page.has_next;
      next.addEventListener("click", () => model.send({ type: "page", direction: "next" }));
      const total = page.total === null || page.total === undefined ? "" : ` of ${page.total.toLocaleString("en-US")}`;
      const label = el("span", "cn-page-label", page.last ? `${page.table}: documents ${page.first}–${page.last}${total}` : `${page.table}: no documents`);
      nav.append(prev, next, label);
      const writable = model.get("_can_write");
      if (writable && page.rows && page.rows.length) {
        // Clearing a table takes two clicks: the first one asks.
        const clear = el("button", "cn-clear", clearing === page.table ? `really delete every ${page.table} document?` : "clear table");
        clear.addEventListener("click", () => {
          if (clearing === page.table) {
            clearing = null;
            model.send({ type: "clear", table: page.table });
          } else {
            clearing = page.table;
            drawData();
          }
        });
        nav.append(clear);
      }
      main.append(nav);
      if (page.rows && page.rows.length) {
        const wrap = el("div", "cn-dash-scroll");
        const actions = writable ? (row) => {
          const edit = el("button", "cn-edit", "edit");
          edit.addEventListener("click", () => {
            editing = { id: row.key, text: row.json };
            drawData();
          });
          const del = el("button", "cn-delete", "delete");
          del.addEventListener("click", () => model.send({ type: "delete", ids: [row.key] }));
          return [edit, del];
        } : null;
        wrap.append(table(page.columns, page.rows, actions));
        main.append(wrap);
      }
      if (editing && page.rows && page.rows.some((r) => r.key === editing.id)) {
        const editor = el("div", "cn-editor");
        editor.dataset.id = editing.id;
        const area = el("textarea", "cn-edit-json");
        area.value = editing.text;
        area.rows = Math.min(16, editing.text.split("\n").length + 1);
        area.addEventListener("input", () => { editing.text = area.value; });
        const save = el("button", "cn-edit-save", "save");
        save.addEventListener("click", () => {
          model.send({ type: "edit", id: editing.id, json: editing.text });
          editing = null;
        });
        const cancel = el("button", "cn-edit-cancel", "cancel");
        cancel.addEventListener("click", () => {
          editing = null;
          drawData();
        });
        editor.append(el("div", "cn-editor-head", `edit ${editing.id} (Convex JSON; the schema validates it)`), area, save, cancel);
        main.append(editor);
      }
    }
    panel.append(side, main);
  }
  let editing = null; // {id, text}: the document open in the editor
  let clearing = null; // the table whose "clear" button asks for confirmation

  // -- Functions ----------------------------------------------------------------------------
  let selectedFn = null;
  const fnPanel = panels.Functions;
  const fnSelect = el("select", "cn-fn-select");
  const form = el("div", "cn-fn-form");
  const runButton = el("button", "cn-fn-run", "Run");
  const identity = el("input", "cn-fn-identity");
  identity.placeholder = 'act as: a subject, or {"subject": ..., "name": ...}';
  const result = el("div", "cn-fn-result");
  fnPanel.append(fnSelect, form, identity, runButton, result);
  fnSelect.addEventListener("change", () => {
    selectedFn = fnSelect.value;
    drawForm();
  });
  runButton.addEventListener("click", () => {
    if (!selectedFn) return;
    const values = {};
    for (const input of form.querySelectorAll("[data-field]")) {
      values[input.dataset.field] = input.type === "checkbox" ? input.checked : input.value;
    }
    runButton.disabled = true;
    model.send({ type: "run", path: selectedFn, form: values, identity: identity.value.trim() });
  });

  function fnByPath(path) {
    return model.get("_functions").find((f) => f.path === path);
  }

  function drawFunctions() {
    const fns = model.get("_functions");
    const previous = selectedFn;
    fnSelect.replaceChildren();
    if (!fns.length) {
      fnSelect.append(el("option", "", "no functions"));
      fnSelect.disabled = true;
      runButton.disabled = true;
      selectedFn = null;
      form.replaceChildren();
      return;
    }
    fnSelect.disabled = false;
    for (const f of fns) {
      const o = el("option", "", `${f.path}  (${f.visibility === "internal" ? "internal " : ""}${f.kind})`);
      o.value = f.path;
      fnSelect.append(o);
    }
    selectedFn = previous && fnByPath(previous) ? previous : fns[0].path;
    fnSelect.value = selectedFn;
    if (previous !== selectedFn) drawForm();
    runButton.disabled = false;
  }

  function drawForm() {
    form.replaceChildren();
    const f = fnByPath(selectedFn);
    if (!f) return;
    if (!f.validated) {
      const label = el("label", "cn-field");
      label.append(el("span", "cn-field-name", "args (JSON)"));
      const area = el("textarea");
      area.dataset.field = "__json__";
      area.placeholder = "{}";
      label.append(area);
      form.append(label);
      return;
    }
    if (!f.fields.length) form.append(el("div", "cn-empty", "no arguments"));
    for (const field of f.fields) {
      const label = el("label", "cn-field");
      label.append(el("span", "cn-field-name", field.name + (field.optional ? "?" : "")));
      let input;
      if (field.kind === "boolean") {
        input = el("input");
        input.type = "checkbox";
      } else if (["string", "id", "float64", "int64"].includes(field.kind)) {
        input = el("input");
        input.type = field.kind === "float64" ? "number" : "text";
        input.step = "any";
      } else {
        input = el("textarea");
        input.placeholder = "JSON";
      }
      input.dataset.field = field.name;
      label.append(input, el("span", "cn-field-type", field.type));
      form.append(label);
    }
  }

  function drawResult() {
    const r = model.get("_result") || {};
    runButton.disabled = !selectedFn;
    result.replaceChildren();
    if (!r.path) return;
    result.dataset.ok = String(!!r.ok);
    result.append(el("div", "cn-fn-result-head", `${r.path}${r.as ? ` as ${r.as}` : ""}: ${r.ok ? "ok" : "error"}`));
    if (r.ok) result.append(el("pre", "cn-fn-value", r.text));
    else result.append(el("pre", "cn-error", r.error));
    if (r.lines && r.lines.length) result.append(el("pre", "cn-fn-lines", r.lines.join("\n")));
  }

  // -- Logs and schedules ----------------------------------------------------------------
  function drawLogs() {
    const logs = model.get("_logs");
    panels.Logs.replaceChildren();
    if (!logs.length) {
      panels.Logs.append(el("div", "cn-empty", "no function calls yet"));
      return;
    }
    const cols = ["time", "function", "kind", "outcome", "duration", "lines"];
    panels.Logs.append(table(cols, logs.map((l) => ({ cells: cols.map((c) => String(l[c] ?? "")) }))));
  }

  function drawSchedules() {
    const panel = panels.Schedules;
    panel.replaceChildren();
    if (!model.get("_has_scheduler")) {
      panel.append(el("div", "cn-empty", "this backend has no scheduler"));
      return;
    }
    const rows = model.get("_scheduled");
    if (!rows.length) {
      panel.append(el("div", "cn-empty", "nothing scheduled"));
      return;
    }
    const cols = ["name", "scheduled", "state", "args"];
    const actions = model.get("_can_write") ? (row) => {
      if (row.state !== "pending") return [];
      const cancel = el("button", "cn-cancel", "cancel");
      cancel.addEventListener("click", () => model.send({ type: "cancel", id: row.key }));
      return [cancel];
    } : null;
    panel.append(table(cols, rows.map((r) => ({ key: r.id, state: r.state, cells: cols.map((c) => String(r[c] ?? "")) })), actions));
  }

  // A panel listing rows of a list trait (keyed by ``key``), or a line saying why it is empty.
  function drawList(panel, rows, cols, key, empty) {
    panel.replaceChildren();
    if (!rows.length) {
      panel.append(el("div", "cn-empty", empty));
      return;
    }
    panel.append(table(cols, rows.map((r) => ({ key: r[key], cells: cols.map((c) => String(r[c] ?? "")) }))));
  }

  function drawCrons() {
    drawList(panels.Crons, model.get("_crons"), ["name", "schedule", "function", "next", "runs"], "name",
      "no cron jobs (define them with app.crons)");
  }

  function drawFiles() {
    if (!model.get("_has_files")) {
      drawList(panels.Files, [], [], "id", "file storage is listed for embedded backends");
      return;
    }
    drawList(panels.Files, model.get("_files"), ["id", "created", "size", "type", "sha256"], "id", "no stored files");
  }

  function drawNotice() {
    const n = model.get("_notice") || {};
    notice.textContent = n.text || "";
    notice.dataset.ok = String(!!n.ok);
    notice.dataset.seq = String(n.seq || 0);
  }

  // Environment variables: names only (values never reach the page, nor a saved notebook),
  // with a form to set or remove one.
  function drawEnv() {
    const panel = panels.Environment;
    drawList(panel, model.get("_env"), ["name", "value"], "name", "no environment variables (app.env[NAME] = VALUE)");
    const form = el("div", "cn-env-form");
    const name = el("input", "cn-env-name");
    name.placeholder = "NAME";
    const value = el("input", "cn-env-value");
    value.placeholder = "value";
    value.type = "password";
    const set = el("button", "cn-env-set", "set");
    set.addEventListener("click", () => model.send({ type: "env_set", name: name.value, value: value.value }));
    const remove = el("button", "cn-env-remove", "remove");
    remove.addEventListener("click", () => model.send({ type: "env_remove", name: name.value }));
    form.append(name, value, set, remove);
    const error = model.get("_env_error");
    panel.append(form);
    if (error) panel.append(el("div", "cn-error", error));
  }

  function draw() {
    title.textContent = `Convex dashboard · ${model.get("_deployment")}`;
    drawNotice();
    root.dataset.seq = String(model.get("_seq"));
    drawData();
    drawFunctions();
    drawResult();
    drawLogs();
    drawSchedules();
    drawCrons();
    drawFiles();
    drawEnv();
    show();
  }

  draw();
  model.on("change:_seq", draw);
  return () => model.off("change:_seq", draw);
}

export default { render };
