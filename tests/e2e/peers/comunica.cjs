// Runs SPARQL queries with Comunica for the federation e2e tests, all in one Node process.
// stdin:  {"jobs": [{"name": "...", "query": "...", "sources": [SOURCE, ...]}]}
//         SOURCE = {"type": "sparql", "value": URL} | {"value": URL} (type found from the service description)
//                | {"turtle": PATH} (a local RDF/JS store: Comunica then evaluates SERVICE itself)
// stdout: {"version": "...", "results": [{"name", "bindings": [{var: {type, value, datatype?, lang?}}] | "error"}]}
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { QueryEngine } = require('@comunica/query-sparql');
const { Parser, Store } = require('n3');

function term(value) {
  const out = { type: { NamedNode: 'uri', BlankNode: 'bnode', Literal: 'literal' }[value.termType], value: value.value };
  if (value.termType === 'Literal') {
    if (value.language) out.lang = value.language;
    else out.datatype = value.datatype.value;
  }
  return out;
}

function source(spec) {
  if (spec.turtle) {
    const store = new Store();
    store.addQuads(new Parser({ format: 'text/turtle' }).parse(fs.readFileSync(spec.turtle, 'utf8')));
    return store;
  }
  return spec.type ? { type: spec.type, value: spec.value } : spec.value;
}

async function run(engine, job) {
  const stream = await engine.queryBindings(job.query, { sources: job.sources.map(source), lenient: false });
  const rows = await stream.toArray();
  return rows.map((bindings) => {
    const row = {};
    for (const [variable, value] of bindings) row[variable.value] = term(value);
    return row;
  });
}

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const pkg = require(path.join(path.dirname(require.resolve('@comunica/query-sparql')), '..', 'package.json'));
  const engine = new QueryEngine();
  const results = [];
  for (const job of input.jobs) {
    try {
      results.push({ name: job.name, bindings: await run(engine, job) });
    } catch (error) {
      results.push({ name: job.name, error: String(error && error.message ? error.message : error) });
    }
  }
  process.stdout.write(JSON.stringify({ version: pkg.version, results }));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
