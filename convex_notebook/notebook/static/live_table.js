// LiveQuery front end (anywidget ESM, no imports): a table keyed by row identity (_id).
// The kernel sends display-ready state; each render bumps `_seq`, on which we redraw once.
// Rows are reconciled by key, so scroll position survives updates and changed rows flash.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fillCell(td, value) {
  if (value === null || value === undefined) {
    td.textContent = "";
    td.className = "cn-missing";
    td.title = "missing";
  } else {
    td.textContent = value;
    td.className = value === "null" ? "cn-null" : "";
    td.title = value.length > 40 ? value : "";
  }
}

function render({ model, el: host }) {
  const root = el("div", "cn-live");
  const header = el("div", "cn-header");
  const title = el("span", "cn-title");
  const status = el("span", "cn-status");
  header.append(title, status);
  const error = el("div", "cn-error");
  const scalar = el("pre", "cn-scalar");
  const wrap = el("div", "cn-table-wrap");
  const table = el("table", "cn-live-table");
  const thead = el("thead");
  const tbody = el("tbody");
  table.append(thead, tbody);
  wrap.append(table);
  const footer = el("div", "cn-footer");
  root.append(header, error, scalar, wrap, footer);
  host.append(root);

  const rowsByKey = new Map();
  let headerKey = null;

  function draw() {
    const shape = model.get("_shape");
    const st = model.get("_status");
    title.textContent = model.get("_title");
    status.textContent = st;
    status.className = "cn-status cn-status-" + st;
    root.dataset.status = st;
    root.dataset.seq = String(model.get("_seq"));
    const err = model.get("_error");
    error.textContent = err;
    error.style.display = err ? "" : "none";

    if (shape === "value") {
      scalar.textContent = model.get("_scalar");
      scalar.style.display = "";
      wrap.style.display = "none";
      footer.textContent = "";
      return;
    }
    scalar.style.display = "none";
    wrap.style.display = "";

    const columns = model.get("_columns");
    const key = JSON.stringify(columns);
    if (key !== headerKey) {
      headerKey = key;
      thead.replaceChildren();
      const tr = el("tr");
      for (const c of columns) tr.append(el("th", c.startsWith("_") ? "cn-system" : "", c));
      thead.append(tr);
      // Cell layout changed: rebuild every row.
      rowsByKey.clear();
      tbody.replaceChildren();
    }

    const rows = model.get("_rows");
    const changed = new Set(model.get("_changed"));
    const keep = new Set();
    let previous = null;
    for (const row of rows) {
      keep.add(row.key);
      let tr = rowsByKey.get(row.key);
      if (!tr) {
        tr = el("tr");
        tr.dataset.cnKey = row.key;
        for (let i = 0; i < columns.length; i++) tr.append(el("td"));
        rowsByKey.set(row.key, tr);
      }
      row.cells.forEach((value, i) => fillCell(tr.children[i], value));
      // Keep DOM order equal to the result's order, moving as few nodes as possible.
      const expected = previous ? previous.nextSibling : tbody.firstChild;
      if (expected !== tr) tbody.insertBefore(tr, expected);
      previous = tr;
      if (changed.has(row.key)) {
        tr.classList.remove("cn-changed");
        void tr.offsetWidth; // restart the highlight animation
        tr.classList.add("cn-changed");
      }
    }
    for (const [k, tr] of rowsByKey) {
      if (!keep.has(k)) {
        tr.remove();
        rowsByKey.delete(k);
      }
    }
    const total = model.get("_total");
    footer.textContent = `showing ${rows.length.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} row${total === 1 ? "" : "s"}`;
  }

  draw();
  model.on("change:_seq", draw);
  return () => model.off("change:_seq", draw);
}

export default { render };
