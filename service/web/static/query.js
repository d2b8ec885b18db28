/* The query page: runs the editor's query (POST /sparql) or a named example (GET /api/queries/<name>),
 * shows results as a sortable table with labelled links, offers downloads, and reports errors in place. */
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

  var editor = window.GKEditor.create(textarea, document.getElementById("query-highlight"), runEditor);
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
    editor.clearError();
    Array.prototype.forEach.call(paramFields.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
  }

  function showProblem(problem, fromEditor) {
    var message = (problem.title || "Error") + ": " + (problem.detail || "");
    if (fromEditor && problem.line && problem.column) {
      var where = t.error_at.replace("{line}", problem.line).replace("{column}", problem.column);
      errorBox.textContent = where + " — " + message;
      errorBox.dataset.line = problem.line;
      errorBox.dataset.column = problem.column;
      errorBox.hidden = false;
      editor.markError(problem.line, problem.column);
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
    fetchLabels(rows).then(function () { table.relabel(); });
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

  function ResultTable(vars, rows) {
    var self = this;
    this.vars = vars;
    this.rows = rows.slice();
    this.sortVar = null;
    this.ascending = true;
    this.tbody = element("tbody");
    this.headers = vars.map(function (v) {
      var button = element("button", { type: "button", class: "sort", "data-var": v }, ["?" + v]);
      var th = element("th", { scope: "col", "aria-sort": "none" }, [button]);
      button.addEventListener("click", function () { self.sort(v); });
      return th;
    });
    this.el = element("table", { class: "result-table" }, [
      element("caption", { class: "visually-hidden" }, [t.results]),
      element("thead", {}, [element("tr", {}, this.headers)]),
      this.tbody,
    ]);
    this.fill();
  }
  ResultTable.prototype.fill = function () {
    var vars = this.vars;
    var body = document.createDocumentFragment();
    this.rows.forEach(function (row) {
      body.appendChild(element("tr", {}, vars.map(function (v) { return cell(row[v]); })));
    });
    this.tbody.replaceChildren(body);
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
    this.fill();
  };
  ResultTable.prototype.relabel = function () {
    Array.prototype.forEach.call(this.tbody.querySelectorAll("a.iri"), function (a) {
      var label = labels[a.dataset.iri];
      if (label) a.textContent = label;
    });
  };

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

  var wanted = new URLSearchParams(location.search).get("example");
  if (wanted && byName(wanted)) {
    exampleSelect.value = wanted;
    chooseExample(wanted);
  }
})();
