/* The query page (the analyst's workbench): runs the editor's query (POST /sparql) or a named example
 * (GET /api/queries/<name>); keeps tabs and a history in the browser (localStorage) and the running query in the
 * URL (a share link); shows results as a sortable, paged table with labelled links and, for an aggregate, a bar
 * chart drawn here as SVG; offers downloads; reports errors in place, while typing and after a run. */
(function () {
  "use strict";

  var page = JSON.parse(document.getElementById("page-data").textContent);
  var examples = JSON.parse(document.getElementById("examples-data").textContent);
  var t = page.t;
  var RESULT_ACCEPT = "application/sparql-results+json, text/turtle;q=0.9";
  var SAFE_IRI = /^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>"{}|\\^`]*$/;
  var LABEL_LIMIT = 400;

  var form = document.getElementById("query-form");
  var textarea = document.getElementById("query");
  var errorBox = document.getElementById("query-error");
  var paramError = document.getElementById("param-error");
  var statusLine = document.getElementById("status");
  var results = document.getElementById("results");
  var downloads = document.getElementById("downloads");
  var inferBox = document.getElementById("infer");
  var exampleSelect = document.getElementById("example");
  var exampleDescription = document.getElementById("example-description");
  var paramsFieldset = document.getElementById("example-params");
  var paramFields = document.getElementById("param-fields");
  var chartBox = document.getElementById("chart");
  var tabBar = document.getElementById("tabs");
  var historyList = document.getElementById("history-list");
  var shareField = document.getElementById("share-link");
  var chartUrl = null;

  // Words only this script shows (the page's own come from service.pages, in page.t).
  var WORDS = {
    en: {
      tab: "Query", new_tab: "New tab", close_tab: "Close tab", tabs: "Query tabs",
      history_empty: "No queries run yet.", copied: "Copied",
      chart: "Chart", chart_of: "{value} by {label}", download_svg: "Download picture (SVG)",
      pages: "Pages of results", page_rows: "Rows {from}–{to} of {total}", previous: "Previous page", next: "Next page",
      syntax: "SPARQL syntax error", forbidden: "SERVICE not allowed",
    },
    zh: {
      tab: "查询", new_tab: "新建标签页", close_tab: "关闭标签页", tabs: "查询标签页",
      history_empty: "还没有运行过查询。", copied: "已复制",
      chart: "图表", chart_of: "按 {label} 统计的 {value}", download_svg: "下载图片（SVG）",
      pages: "结果分页", page_rows: "第 {from}–{to} 行，共 {total} 行", previous: "上一页", next: "下一页",
      syntax: "SPARQL 语法错误", forbidden: "不允许的 SERVICE 调用",
    },
  };
  var w = WORDS[page.lang] || WORDS.en;
  var PROBLEM_TITLES = { "query-syntax": w.syntax, "service-forbidden": w.forbidden };
  var PAGE_SIZE = 100;
  var DETAIL_LIMIT = 160;
  var STORE_TABS = "guian-kg.tabs";
  var STORE_HISTORY = "guian-kg.history";
  var HISTORY_LIMIT = 50;

  var editor = window.GKEditor.create(textarea, {
    lang: page.lang,
    labelledBy: "query-label",
    onRun: runEditor,
    onLint: showLint,
    onChange: function (text) { saveTab(text); },
    describe: describe,
  });
  window.GKWorkbench = { editor: editor };
  var labels = Object.create(null);

  function byName(name) {
    for (var i = 0; i < examples.length; i++) if (examples[i].name === name) return examples[i];
    return null;
  }

  function text(map) {
    if (!map) return "";
    return map[page.lang] || map.en || map.zh || "";
  }

  function localHref(iri) {
    var base = page.base;
    if (iri.indexOf(base + "id/") === 0) return "/id/" + iri.slice(base.length + 3);
    if (iri.indexOf(base + "graph/claim/") === 0) return "/graph/claim/" + iri.slice(base.length + 12);
    if (iri.indexOf(base + "ontology#") === 0) return "/ontology#" + iri.slice(base.length + 9);
    return null;
  }

  function element(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) el.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return el;
  }

  // --- errors ---------------------------------------------------------------------------------------------

  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    paramError.hidden = true;
    paramError.textContent = "";
    delete errorBox.dataset.line;
    delete errorBox.dataset.column;
    delete errorBox.dataset.source;
    editor.clearError();
    Array.prototype.forEach.call(paramFields.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
  }

  /** The problem in the page's language: where (line, column), what (title), and the engine's detail. */
  function describe(problem) {
    var detail = (problem.detail || "").replace(/^error at \d+:\d+:\s*/, ""); // the position is said first
    if (detail.length > DETAIL_LIMIT) detail = detail.slice(0, DETAIL_LIMIT) + "…"; // "expected one of" lists run on
    var message = (PROBLEM_TITLES[problem.code] || problem.title || "Error") + ": " + detail;
    if (!problem.line) return message;
    return t.error_at.replace("{line}", problem.line).replace("{column}", problem.column || 1) + " — " + message;
  }

  function showEditorProblem(problem, source) {
    errorBox.textContent = describe(problem);
    errorBox.dataset.source = source;
    if (problem.line) {
      errorBox.dataset.line = problem.line;
      errorBox.dataset.column = problem.column || 1;
    }
    errorBox.hidden = false;
  }

  /** The syntax check while typing (from the editor's linter): shown before Run, cleared when fixed. */
  function showLint(problem) {
    if (problem) {
      showEditorProblem(problem, "lint");
    } else if (errorBox.dataset.source === "lint") {
      errorBox.hidden = true;
      errorBox.textContent = "";
      delete errorBox.dataset.source;
      delete errorBox.dataset.line;
      delete errorBox.dataset.column;
    }
  }

  function showProblem(problem, fromEditor) {
    var message = (problem.title || "Error") + ": " + (problem.detail || "");
    if (fromEditor && problem.line) {
      showEditorProblem(problem, "run");
      editor.markError(problem, describe(problem));
    } else if (!fromEditor) {
      paramError.textContent = message;
      paramError.hidden = false;
      var field = problem.parameter && document.getElementById("param-" + problem.parameter);
      if (field) {
        field.setAttribute("aria-invalid", "true");
        field.focus();
      }
    } else {
      errorBox.textContent = message;
      errorBox.hidden = false;
    }
    statusLine.textContent = "";
  }

  // --- running --------------------------------------------------------------------------------------------

  function inferParam() {
    return inferBox.checked ? "true" : "false";
  }

  function runEditor() {
    remember(editor.getText(), inferBox.checked);
    showShareLink();
    var body = new URLSearchParams();
    body.set("query", editor.getText());
    body.set("infer", inferParam());
    var downloadBase = "/sparql?" + body.toString();
    execute(fetch("/sparql", {
      method: "POST",
      headers: { Accept: RESULT_ACCEPT, "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
    }), downloadBase, true);
  }

  function exampleParams(example) {
    var params = new URLSearchParams();
    (example.parameters || []).forEach(function (p) {
      var field = document.getElementById("param-" + p.name);
      if (!field) return;
      if (field.multiple) {
        Array.prototype.forEach.call(field.selectedOptions, function (o) { params.append(p.name, o.value); });
      } else if (field.value.trim() !== "") {
        params.append(p.name, field.value.trim());
      }
    });
    params.set("infer", inferParam());
    return params;
  }

  function runExample() {
    var example = byName(exampleSelect.value);
    if (!example) return;
    var url = example.url + "?" + exampleParams(example).toString();
    execute(fetch(url, { headers: { Accept: RESULT_ACCEPT } }), url, false);
  }

  function execute(request, downloadBase, fromEditor) {
    clearErrors();
    statusLine.textContent = t.running;
    results.setAttribute("aria-busy", "true");
    var started = performance.now();
    request
      .then(function (response) {
        var type = (response.headers.get("Content-Type") || "").split(";")[0].trim();
        if (!response.ok) {
          return response.text().then(function (body) {
            var problem;
            try { problem = JSON.parse(body); } catch (e) { problem = { title: response.status + " " + response.statusText, detail: body.slice(0, 300) }; }
            showProblem(problem, fromEditor);
            results.replaceChildren();
            downloads.hidden = true;
          });
        }
        var seconds = ((performance.now() - started) / 1000).toFixed(2);
        if (type === "application/sparql-results+json") {
          return response.json().then(function (json) {
            showResults(json, seconds);
            offerDownloads(downloadBase, json.boolean !== undefined ? ["json", "xml"] : ["csv", "json", "tsv", "xml"]);
          });
        }
        return response.text().then(function (body) {
          results.replaceChildren(element("pre", { class: "rdf-output" }, [body]));
          statusLine.textContent = seconds + " s";
          offerDownloads(downloadBase, ["ttl", "jsonld", "nt"]);
        });
      })
      .catch(function (err) {
        showProblem({ title: "Network error", detail: String(err) }, fromEditor);
      })
      .finally(function () {
        results.removeAttribute("aria-busy");
      });
  }

  var FORMAT_NAMES = { csv: "CSV", json: "JSON", tsv: "TSV", xml: "XML", ttl: "Turtle", jsonld: "JSON-LD", nt: "N-Triples" };
  var FORMAT_EXTENSIONS = { csv: "csv", json: "srj", tsv: "tsv", xml: "srx", ttl: "ttl", jsonld: "jsonld", nt: "nt" };

  function offerDownloads(base, formats) {
    downloads.replaceChildren(element("span", {}, [t.download + ":"]));
    formats.forEach(function (key) {
      var href = base + (base.indexOf("?") < 0 ? "?" : "&") + "format=" + key;
      // CSV/TSV for people: formula-safe cells, sent as an attachment (the protocol's own CSV stays exact)
      if (key === "csv" || key === "tsv") href += "&download=spreadsheet";
      downloads.appendChild(document.createTextNode(" "));
      downloads.appendChild(element("a", {
        href: href, download: "results." + FORMAT_EXTENSIONS[key], "data-format": key,
      }, [FORMAT_NAMES[key]]));
    });
    downloads.hidden = formats.length === 0;
  }

  // --- results table --------------------------------------------------------------------------------------

  function showResults(json, seconds) {
    chartBox.hidden = true;
    chartBox.replaceChildren();
    if (json.boolean !== undefined) {
      results.replaceChildren(element("p", { class: "boolean" }, [String(json.boolean)]));
      statusLine.textContent = "ASK → " + json.boolean + " (" + seconds + " s)";
      return;
    }
    var vars = json.head.vars;
    var rows = json.results.bindings;
    statusLine.textContent = rows.length + " " + t.rows + " (" + seconds + " s)";
    if (!rows.length) {
      results.replaceChildren(element("p", {}, [t.no_results]));
      return;
    }
    var table = new ResultTable(vars, rows);
    results.replaceChildren(table.el);
    var chart = chartable(vars, rows);
    if (chart) drawChart(chart, rows);
    fetchLabels(rows).then(function () {
      table.relabel();
      if (chart) drawChart(chart, rows);
    });
  }

  function cellKey(term) {
    if (!term) return "";
    if (term.type === "uri") return labels[term.value] || term.value;
    return term.value;
  }

  function isNumeric(term) {
    return term && term.type === "literal" && term.datatype && /#(integer|decimal|double|float|int|long|short|nonNegativeInteger|positiveInteger)$/.test(term.datatype);
  }

  function compare(a, b) {
    if (isNumeric(a) && isNumeric(b)) return Number(a.value) - Number(b.value);
    if (!a || !b) return a ? 1 : b ? -1 : 0;
    return cellKey(a).localeCompare(cellKey(b), page.lang === "zh" ? "zh-Hans-CN" : "en", { numeric: true });
  }

  function cell(term) {
    var td = element("td");
    if (!term) return td;
    if (term.type === "uri") {
      var local = localHref(term.value);
      if (!local && !/^https?:\/\//i.test(term.value)) {
        // only http(s) IRIs become links: a javascript: or data: IRI from the data is shown as text
        td.appendChild(element("span", { class: "iri", title: term.value, "data-iri": term.value },
          [labels[term.value] || term.value]));
        return td;
      }
      var a = element("a", {
        href: local || term.value, class: "iri" + (local ? "" : " external"), title: term.value, "data-iri": term.value,
      }, [labels[term.value] || term.value]);
      if (!local) a.setAttribute("rel", "noreferrer");
      td.appendChild(a);
    } else if (term.type === "literal") {
      td.appendChild(element("span", { class: "literal", lang: term["xml:lang"] || null }, [term.value]));
      if (term["xml:lang"]) td.appendChild(element("span", { class: "tag" }, [" @" + term["xml:lang"]]));
    } else {
      td.appendChild(element("span", { class: "bnode" }, ["_:" + term.value]));
    }
    return td;
  }

  /** The rows as a table that holds them all but puts one page of PAGE_SIZE in the DOM; sortable by column. */
  function ResultTable(vars, rows) {
    var self = this;
    this.vars = vars;
    this.rows = rows.slice();
    this.page = 0;
    this.sortVar = null;
    this.ascending = true;
    this.tbody = element("tbody");
    this.headers = vars.map(function (v) {
      var button = element("button", { type: "button", class: "sort", "data-var": v }, ["?" + v]);
      var th = element("th", { scope: "col", "aria-sort": "none" }, [button]);
      button.addEventListener("click", function () { self.sort(v); });
      return th;
    });
    var table = element("table", { class: "result-table" }, [
      element("caption", { class: "visually-hidden" }, [t.results]),
      element("thead", {}, [element("tr", {}, this.headers)]),
      this.tbody,
    ]);
    this.pageText = element("span", { class: "page-rows", "aria-live": "polite" });
    this.previous = element("button", { type: "button", class: "page-previous" }, ["← " + w.previous]);
    this.next = element("button", { type: "button", class: "page-next" }, [w.next + " →"]);
    this.previous.addEventListener("click", function () { self.show(self.page - 1); });
    this.next.addEventListener("click", function () { self.show(self.page + 1); });
    this.pager = element("nav", { class: "pager", "aria-label": w.pages }, [
      this.previous, " ", this.pageText, " ", this.next,
    ]);
    this.pager.hidden = rows.length <= PAGE_SIZE;
    this.el = element("div", { class: "result-view" }, [this.pager, table]);
    this.fill();
  }
  ResultTable.prototype.pages = function () {
    return Math.max(1, Math.ceil(this.rows.length / PAGE_SIZE));
  };
  ResultTable.prototype.show = function (n) {
    this.page = Math.min(Math.max(0, n), this.pages() - 1);
    this.fill();
  };
  ResultTable.prototype.fill = function () {
    var vars = this.vars;
    var first = this.page * PAGE_SIZE;
    var shown = this.rows.slice(first, first + PAGE_SIZE);
    var body = document.createDocumentFragment();
    shown.forEach(function (row) {
      body.appendChild(element("tr", {}, vars.map(function (v) { return cell(row[v]); })));
    });
    this.tbody.replaceChildren(body);
    this.pageText.textContent = w.page_rows.replace("{from}", first + 1)
      .replace("{to}", first + shown.length).replace("{total}", this.rows.length);
    this.previous.disabled = this.page === 0;
    this.next.disabled = this.page >= this.pages() - 1;
  };
  ResultTable.prototype.sort = function (v) {
    this.ascending = this.sortVar === v ? !this.ascending : true;
    this.sortVar = v;
    var direction = this.ascending ? 1 : -1;
    this.rows.sort(function (a, b) { return direction * compare(a[v], b[v]); });
    var self = this;
    this.headers.forEach(function (th, i) {
      th.setAttribute("aria-sort", self.vars[i] === v ? (self.ascending ? "ascending" : "descending") : "none");
    });
    this.page = 0;
    this.fill();
  };
  ResultTable.prototype.relabel = function () {
    this.fill(); // cells take their labels from `labels` as they are made
  };

  // --- chart of an aggregate ------------------------------------------------------------------------------

  var CHART_LIMIT = 60;
  var SVG_NS = "http://www.w3.org/2000/svg";

  /** {label, value} variables when the result looks like an aggregate: one numeric column, one to name bars. */
  function chartable(vars, rows) {
    if (rows.length < 1 || rows.length > 500 || vars.length < 2) return null;
    var numeric = vars.filter(function (v) {
      return rows.every(function (row) { return isNumeric(row[v]); });
    });
    var naming = vars.filter(function (v) {
      return numeric.indexOf(v) < 0 && rows.every(function (row) { return row[v] && row[v].type !== "bnode"; });
    });
    if (!numeric.length || !naming.length) return null;
    return { label: naming[0], value: numeric[numeric.length - 1] };
  }

  function svg(tag, attrs, text) {
    var el = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** A horizontal bar chart (SVG, drawn here) of the value by the label, largest first, with a download link. */
  function drawChart(chart, rows) {
    var bars = rows.map(function (row) {
      return { name: cellKey(row[chart.label]), value: Number(row[chart.value].value) };
    }).sort(function (a, b) { return b.value - a.value; }).slice(0, CHART_LIMIT);
    var max = Math.max.apply(null, bars.map(function (b) { return Math.abs(b.value); })) || 1;
    var labelWidth = 240, barArea = 420, rowHeight = 24, top = 34;
    var width = labelWidth + barArea + 70;
    var height = top + bars.length * rowHeight + 10;
    var title = w.chart_of.replace("{value}", "?" + chart.value).replace("{label}", "?" + chart.label);
    var picture = svg("svg", {
      xmlns: SVG_NS, width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": title, class: "bar-chart", "font-family": "'Noto Sans CJK SC', 'Noto Sans', sans-serif",
    });
    picture.appendChild(svg("rect", { x: 0, y: 0, width: width, height: height, fill: "#ffffff" }));
    picture.appendChild(svg("text", { x: 8, y: 20, "font-size": 14, "font-weight": 600, fill: "#1d2733" }, title));
    bars.forEach(function (bar, i) {
      var y = top + i * rowHeight;
      var length = Math.max(1, Math.round((Math.abs(bar.value) / max) * barArea));
      var name = bar.name.length > 32 ? bar.name.slice(0, 31) + "…" : bar.name;
      var group = svg("g", { class: "bar", "data-name": bar.name, "data-value": bar.value });
      group.appendChild(svg("text", { x: labelWidth - 8, y: y + 16, "text-anchor": "end", "font-size": 12, fill: "#1d2733" }, name));
      group.appendChild(svg("rect", { x: labelWidth, y: y + 3, width: length, height: rowHeight - 7, fill: "#1f5fa8" }));
      group.appendChild(svg("text", { x: labelWidth + length + 6, y: y + 16, "font-size": 12, fill: "#1d2733" }, String(bar.value)));
      group.appendChild(svg("title", {}, bar.name + ": " + bar.value));
      picture.appendChild(group);
    });
    var source = new XMLSerializer().serializeToString(picture);
    if (chartUrl) URL.revokeObjectURL(chartUrl);
    chartUrl = URL.createObjectURL(new Blob([source], { type: "image/svg+xml" }));
    var link = element("a", {
      href: chartUrl,
      download: "chart.svg", class: "chart-download",
    }, [w.download_svg]);
    chartBox.replaceChildren(
      element("figcaption", {}, [w.chart]),
      element("div", { class: "scroll-x" }, [picture]),
      element("p", {}, [link]),
    );
    chartBox.hidden = false;
  }

  /** Labels (in the page's language where there is one) of the IRIs in the rows, by one more query. */
  function fetchLabels(rows) {
    var wanted = [];
    var seen = Object.create(null);
    rows.forEach(function (row) {
      Object.keys(row).forEach(function (k) {
        var term = row[k];
        if (term.type === "uri" && !(term.value in labels) && !seen[term.value] && SAFE_IRI.test(term.value)) {
          seen[term.value] = true;
          wanted.push(term.value);
        }
      });
    });
    wanted = wanted.slice(0, LABEL_LIMIT);
    if (!wanted.length) return Promise.resolve();
    var query =
      "SELECT ?x ?label WHERE { VALUES ?x { " + wanted.map(function (i) { return "<" + i + ">"; }).join(" ") +
      " } ?x <http://www.w3.org/2004/02/skos/core#prefLabel>|<http://www.w3.org/2000/01/rdf-schema#label> ?label }";
    var body = new URLSearchParams({ query: query, infer: "false" });
    return fetch("/sparql", {
      method: "POST",
      headers: { Accept: "application/sparql-results+json", "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
    })
      .then(function (r) { return r.ok ? r.json() : { results: { bindings: [] } }; })
      .then(function (json) {
        var best = Object.create(null);
        json.results.bindings.forEach(function (b) {
          var iri = b.x.value;
          var tag = (b.label["xml:lang"] || "").split("-")[0];
          var rank = tag === page.lang ? 0 : tag === "" ? 1 : 2;
          if (!(iri in best) || rank < best[iri].rank) best[iri] = { rank: rank, value: b.label.value };
        });
        Object.keys(best).forEach(function (iri) { labels[iri] = best[iri].value; });
      })
      .catch(function () { /* labels are a nicety: the IRIs stay shown */ });
  }

  // --- examples -------------------------------------------------------------------------------------------

  function parameterField(p) {
    var id = "param-" + p.name;
    var description = text(p.description);
    var label = element("label", { for: id }, [p.name + (p.required ? " *" : "")]);
    var field;
    if (p.allowed && p.allowed.length && (p.multiple || p.allowed.length <= 60)) {
      field = element("select", { id: id, name: p.name });
      if (p.multiple) field.multiple = true;
      else if (!p.required) field.appendChild(element("option", { value: "" }, ["—"]));
      var defaults = [].concat(p.default === undefined ? [] : p.default).map(String);
      p.allowed.forEach(function (value) {
        var option = element("option", { value: value }, [value]);
        if (defaults.indexOf(String(value)) >= 0) option.selected = true;
        field.appendChild(option);
      });
      if (p.multiple) field.size = Math.min(p.allowed.length, 8);
    } else {
      field = element("input", {
        id: id, name: p.name, type: p.type === "integer" ? "number" : "text",
        value: p.default === undefined ? "" : [].concat(p.default).join(" "),
      });
      if (p.minimum !== undefined) field.min = p.minimum;
      if (p.maximum !== undefined) field.max = p.maximum;
    }
    if (description) {
      field.setAttribute("aria-describedby", id + "-help");
    }
    return element("div", { class: "param" }, [
      label, field, description ? element("span", { class: "hint", id: id + "-help" }, [description]) : "",
    ]);
  }

  function chooseExample(name) {
    var example = byName(name);
    clearErrors();
    paramFields.replaceChildren();
    if (!example) {
      paramsFieldset.hidden = true;
      exampleDescription.textContent = "";
      return;
    }
    editor.setText(example.text);
    activeTab().title = text(example.title) || example.name;
    store(STORE_TABS, tabs);
    drawTabs();
    exampleDescription.textContent = text(example.description);
    (example.parameters || []).forEach(function (p) { paramFields.appendChild(parameterField(p)); });
    paramsFieldset.hidden = false;
  }

  exampleSelect.addEventListener("change", function () { chooseExample(exampleSelect.value); });
  document.getElementById("run-example").addEventListener("click", runExample);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    runEditor();
  });

  // --- tabs, history and share links (kept in this browser's localStorage) -------------------------------

  function load(key, fallback) {
    try {
      var value = JSON.parse(localStorage.getItem(key));
      return value === null ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  function store(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* full or forbidden: the page works without */ }
  }

  var tabs = load(STORE_TABS, null);
  if (!tabs || !Array.isArray(tabs.tabs) || !tabs.tabs.length) {
    tabs = { active: 1, next: 2, tabs: [{ id: 1, query: editor.getText(), infer: inferBox.checked }] };
  }
  var switching = false; // while a tab's text is put into the editor, its change is not a user's edit

  function activeTab() {
    for (var i = 0; i < tabs.tabs.length; i++) if (tabs.tabs[i].id === tabs.active) return tabs.tabs[i];
    tabs.active = tabs.tabs[0].id;
    return tabs.tabs[0];
  }

  function saveTab(text) {
    if (switching || !tabs) return;
    var tab = activeTab();
    tab.query = text;
    tab.infer = inferBox.checked;
    store(STORE_TABS, tabs);
  }

  function openTab(query, infer, title) {
    var tab = { id: tabs.next++, query: query, infer: infer, title: title || null };
    tabs.tabs.push(tab);
    selectTab(tab.id);
  }

  function selectTab(id) {
    tabs.active = id;
    var tab = activeTab();
    switching = true;
    editor.setText(tab.query);
    switching = false;
    inferBox.checked = tab.infer !== false;
    clearErrors();
    store(STORE_TABS, tabs);
    drawTabs();
  }

  function closeTab(id) {
    if (tabs.tabs.length === 1) return;
    var index = tabs.tabs.findIndex(function (tab) { return tab.id === id; });
    tabs.tabs.splice(index, 1);
    if (tabs.active === id) selectTab(tabs.tabs[Math.max(0, index - 1)].id);
    else { store(STORE_TABS, tabs); drawTabs(); }
  }

  function drawTabs() {
    var items = tabs.tabs.map(function (tab, i) {
      var name = tab.title || w.tab + " " + (i + 1);
      var button = element("button", {
        type: "button", role: "tab", class: "tab", "aria-selected": String(tab.id === tabs.active), "data-tab": tab.id,
      }, [name]);
      button.addEventListener("click", function () { selectTab(tab.id); });
      var parts = [button];
      if (tabs.tabs.length > 1) {
        var close = element("button", {
          type: "button", class: "tab-close", "aria-label": w.close_tab + " " + name, title: w.close_tab,
        }, ["×"]);
        close.addEventListener("click", function () { closeTab(tab.id); });
        parts.push(close);
      }
      return element("span", { class: "tab-item" + (tab.id === tabs.active ? " active" : "") }, parts);
    });
    var add = element("button", { type: "button", class: "tab-new", "aria-label": w.new_tab, title: w.new_tab }, ["+"]);
    add.addEventListener("click", function () { openTab(page.prefixes || "", inferBox.checked); editor.focus(); });
    tabBar.replaceChildren(element("span", { role: "tablist", "aria-label": w.tabs }, items), add);
  }

  function remember(query, infer) {
    var past = load(STORE_HISTORY, []).filter(function (item) { return item.query !== query || item.infer !== infer; });
    past.unshift({ query: query, infer: infer, at: new Date().toISOString() });
    store(STORE_HISTORY, past.slice(0, HISTORY_LIMIT));
    drawHistory();
  }

  function drawHistory() {
    var past = load(STORE_HISTORY, []);
    if (!past.length) {
      historyList.replaceChildren(element("li", { class: "hint" }, [w.history_empty]));
      return;
    }
    historyList.replaceChildren.apply(historyList, past.map(function (item) {
      var body = item.query.replace(/^\s*PREFIX[^\n]*\n/gim, "").replace(/\s+/g, " ").trim();
      var when = new Date(item.at).toLocaleString(page.lang === "zh" ? "zh-CN" : "en-GB");
      var button = element("button", { type: "button", class: "history-item", title: item.query }, [
        element("span", { class: "history-query" }, [body.slice(0, 90) + (body.length > 90 ? "…" : "")]),
        element("span", { class: "history-when" }, [when]),
      ]);
      button.addEventListener("click", function () {
        editor.setText(item.query);
        inferBox.checked = item.infer !== false;
        saveTab(item.query);
        editor.focus();
      });
      return element("li", {}, [button]);
    }));
  }

  /** The link that reopens this query, inference setting and language; also put in the address bar. */
  function shareLink() {
    var hash = new URLSearchParams({ query: editor.getText(), infer: inferParam() });
    return location.origin + "/?lang=" + encodeURIComponent(page.lang) + "#" + hash.toString();
  }

  function showShareLink() {
    var link = shareLink();
    shareField.value = link;
    history.replaceState(null, "", link.slice(location.origin.length));
  }

  document.getElementById("share").addEventListener("click", function () {
    showShareLink();
    shareField.focus();
    shareField.select();
    var done = function () { document.getElementById("share-status").textContent = w.copied; };
    if (navigator.clipboard) navigator.clipboard.writeText(shareField.value).then(done, function () {});
  });
  document.getElementById("clear-history").addEventListener("click", function () {
    store(STORE_HISTORY, []);
    drawHistory();
  });
  inferBox.addEventListener("change", function () { saveTab(editor.getText()); });

  // Ctrl/Cmd+Enter runs the editor's query from anywhere on the page (the editor handles its own).
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.defaultPrevented) {
      event.preventDefault();
      runEditor();
    }
  });

  // What the URL asks for: a shared query (#query=…&infer=…) opens in a tab of its own; ?example=name loads
  // a named query; otherwise the tabs of last time come back.
  var shared = new URLSearchParams(location.hash.slice(1));
  var wanted = new URLSearchParams(location.search).get("example");
  if (shared.has("query")) {
    var sharedQuery = shared.get("query");
    var sharedInfer = shared.get("infer") !== "false";
    var same = tabs.tabs.filter(function (tab) { return tab.query === sharedQuery && tab.infer === sharedInfer; })[0];
    if (same) selectTab(same.id);
    else openTab(sharedQuery, sharedInfer);
    shareField.value = location.href;
  } else {
    selectTab(tabs.active);
  }
  if (wanted && byName(wanted)) {
    // "Open in editor" of a named query: a tab of its own (the one it already has, after a reload).
    var known = tabs.tabs.filter(function (tab) { return tab.query === byName(wanted).text; })[0];
    if (known) selectTab(known.id);
    else openTab(byName(wanted).text, inferBox.checked);
    exampleSelect.value = wanted;
    chooseExample(wanted);
  }
  drawHistory();
})();
