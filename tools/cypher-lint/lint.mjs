#!/usr/bin/env node
// Parse Cypher files with Neo4j's own Cypher 5 parser (@neo4j-cypher/language-support) and print the
// problems as JSON: {"file": [{"severity": "error"|"warning", "line", "column", "message"}], ...}.
// A file may hold several statements separated by `;`. "Parameter $x is not defined" is not a problem:
// parameters come from the caller. Exit status: 1 when any file has an error, else 0.
import { readFileSync } from 'node:fs';
import { lintCypherQuery, isNotParamError } from '@neo4j-cypher/language-support';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node lint.mjs FILE.cypher...');
  process.exit(2);
}
const report = {};
let errors = 0;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const { diagnostics } = lintCypherQuery(text, { defaultLanguage: 'CYPHER 5' });
  report[file] = diagnostics.filter(isNotParamError).map((d) => ({
    severity: d.severity === 1 ? 'error' : 'warning',
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
    message: d.message,
  }));
  errors += report[file].filter((d) => d.severity === 'error').length;
}
console.log(JSON.stringify(report, null, 1));
process.exit(errors ? 1 : 0);
