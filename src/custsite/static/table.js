// custsite customers table: facets with counts, text search and sorting, with the state in
// the URL so that a filtered view can be shared and back/forward work. The table is complete
// without this script; it only hides, shows and reorders existing rows.
(function () {
  "use strict";
  var table = document.getElementById("customers-table");
  var dataNode = document.getElementById("facet-rows");
  var form = document.getElementById("facets");
  if (!table || !dataNode || !form) { return; }
  var rowsData = JSON.parse(dataNode.textContent);
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var facetNames = Array.prototype.map.call(form.querySelectorAll("fieldset[data-facet]"),
    function (fs) { return fs.getAttribute("data-facet"); });
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var search = document.getElementById("q");
  var status = document.getElementById("status");
  var total = rows.length;
  var state = { filters: {}, q: "", sort: "", dir: "asc" };
  // Only the first PAGE matching rows are laid out until "Show all" is pressed: a browser
  // takes seconds to lay out 10,000 table rows, and nobody reads that many at once.
  var PAGE = 500;
  var limit = PAGE;
  var more = document.getElementById("more");
  var sortKeys = {};  // column key -> array of comparable values, by row index
  var order = rows.map(function (_, i) { return i; });

  function cellKey(row, col) {
    var cell = row.cells[col];
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim().toLowerCase() : v;
  }

  function keysFor(col) {
    var key = headers[col].getAttribute("data-key");
    if (!sortKeys[key]) {
      var numeric = headers[col].classList.contains("num") || key === "stage";
      sortKeys[key] = rows.map(function (row) {
        var v = cellKey(row, col);
        return numeric ? (v === "" ? -Infinity : parseFloat(v)) : v;
      });
    }
    return sortKeys[key];
  }

  function readUrl() {
    var params = new URLSearchParams(window.location.search);
    state = { filters: {}, q: params.get("q") || "", sort: params.get("sort") || "",
              dir: params.get("dir") === "desc" ? "desc" : "asc" };
    facetNames.forEach(function (name) {
      var values = params.getAll(name);
      if (values.length) { state.filters[name] = values; }
    });
  }

  function writeUrl(push) {
    var params = new URLSearchParams();
    facetNames.forEach(function (name) {
      (state.filters[name] || []).forEach(function (v) { params.append(name, v); });
    });
    if (state.q) { params.set("q", state.q); }
    if (state.sort) { params.set("sort", state.sort); params.set("dir", state.dir); }
    var query = params.toString();
    var url = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
    try {
      if (push) { window.history.pushState(null, "", url); }
      else { window.history.replaceState(null, "", url); }
    } catch (e) { /* some browsers refuse history on file:// URLs; the view still works */ }
  }

  function matches(i, skip) {
    var data = rowsData[i];
    for (var f = 0; f < facetNames.length; f++) {
      var name = facetNames[f];
      if (name === skip) { continue; }
      var wanted = state.filters[name];
      if (!wanted || !wanted.length) { continue; }
      var have = data[name], ok = false;
      for (var k = 0; k < have.length && !ok; k++) { ok = wanted.indexOf(have[k]) >= 0; }
      if (!ok) { return false; }
    }
    if (state.q) {
      var words = state.q.toLowerCase().split(/\s+/);
      for (var w = 0; w < words.length; w++) {
        if (words[w] && data.q.indexOf(words[w]) < 0) { return false; }
      }
    }
    return true;
  }

  function applyFilters() {
    var matched = 0;
    for (var o = 0; o < order.length; o++) {
      var i = order[o];
      var ok = matches(i, null);
      if (ok) { matched++; }
      var visible = ok && matched <= limit;
      if (rows[i].hidden === visible) { rows[i].hidden = !visible; }
    }
    // Facet counts: for each facet, the rows matching every *other* filter (as Datasette does).
    facetNames.forEach(function (name) {
      var counts = {};
      for (var i = 0; i < rows.length; i++) {
        if (!matches(i, name)) { continue; }
        var have = rowsData[i][name];
        for (var k = 0; k < have.length; k++) { counts[have[k]] = (counts[have[k]] || 0) + 1; }
      }
      var fs = form.querySelector('fieldset[data-facet="' + name + '"]');
      Array.prototype.forEach.call(fs.querySelectorAll("input"), function (input) {
        var n = counts[input.value] || 0;
        var label = input.parentNode;
        label.querySelector(".n").textContent = n;
        input.checked = (state.filters[name] || []).indexOf(input.value) >= 0;
        label.classList.toggle("empty", n === 0 && !input.checked);
      });
    });
    if (search.value !== state.q) { search.value = state.q; }
    var shown = Math.min(matched, limit);
    status.textContent = (matched === total ? total + " contacts" : matched + " of " + total +
                          " contacts") + (shown < matched ? ", the first " + shown + " shown" : "");
    more.hidden = shown >= matched;
    more.textContent = "Show all " + matched;
  }

  function applySort() {
    headers.forEach(function (th) {
      var key = th.getAttribute("data-key");
      th.setAttribute("aria-sort", key === state.sort
                      ? (state.dir === "desc" ? "descending" : "ascending") : "none");
    });
    var col = -1;
    headers.forEach(function (th, c) { if (th.getAttribute("data-key") === state.sort) { col = c; } });
    var wanted = rows.map(function (_, i) { return i; });
    if (col >= 0) {
      var keys = keysFor(col), sign = state.dir === "desc" ? -1 : 1;
      wanted.sort(function (a, b) {
        var x = keys[a], y = keys[b];
        if (x < y) { return -sign; }
        if (x > y) { return sign; }
        return a - b;  // stable: the original (by name) order breaks ties
      });
    }
    var same = wanted.every(function (v, i) { return v === order[i]; });
    if (same) { return; }
    order = wanted;
    // Reorder the rows while the body is out of the document: no layout work per move.
    var next = tbody.nextSibling;
    table.removeChild(tbody);
    for (var i = 0; i < order.length; i++) { tbody.appendChild(rows[order[i]]); }
    applyFilters();
    table.insertBefore(tbody, next);
  }

  function render() { applySort(); applyFilters(); }

  headers.forEach(function (th) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.textContent = th.textContent;
    button.setAttribute("aria-label", "Sort by " + th.textContent.trim());
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () {
      var key = th.getAttribute("data-key");
      if (state.sort === key) { state.dir = state.dir === "asc" ? "desc" : "asc"; }
      else { state.sort = key; state.dir = th.classList.contains("num") ? "desc" : "asc"; }
      writeUrl(true);
      applySort();
    });
  });

  more.addEventListener("click", function () {
    limit = Infinity;
    applyFilters();
  });

  form.addEventListener("change", function (event) {
    var input = event.target;
    if (!input || input.type !== "checkbox") { return; }
    var list = state.filters[input.name] || [];
    if (input.checked) { if (list.indexOf(input.value) < 0) { list.push(input.value); } }
    else { list = list.filter(function (v) { return v !== input.value; }); }
    if (list.length) { state.filters[input.name] = list; } else { delete state.filters[input.name]; }
    limit = PAGE;
    writeUrl(true);
    applyFilters();
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });

  var typing = null;
  search.addEventListener("input", function () {
    window.clearTimeout(typing);
    typing = window.setTimeout(function () {
      state.q = search.value.trim();
      limit = PAGE;
      writeUrl(false);
      applyFilters();
    }, 120);
  });

  document.getElementById("clear").addEventListener("click", function () {
    state.filters = {};
    state.q = "";
    limit = PAGE;
    writeUrl(true);
    applyFilters();
  });

  window.addEventListener("popstate", function () { readUrl(); limit = PAGE; render(); });

  form.hidden = false;
  document.getElementById("search").hidden = false;
  readUrl();
  render();
  document.documentElement.classList.add("table-ready");
}());
