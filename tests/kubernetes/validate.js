// Validates Kubernetes objects against the API's schemas, offline (kubernetes-models).
// Input on stdin: a JSON array of objects. Prints one line per object; exits 1 if any is invalid
// or of a kind it has no schema for.
'use strict';
const fs = require('fs');

function modelFor(apiVersion, kind) {
  const module = apiVersion.startsWith('monitoring.coreos.com/')
    ? '@kubernetes-models/prometheus-operator/' + apiVersion
    : 'kubernetes-models/' + apiVersion;
  let found;
  try {
    found = require(module)[kind];
  } catch (e) {
    found = undefined;
  }
  return found;
}

const objects = JSON.parse(fs.readFileSync(0, 'utf8'));
let failed = 0;
for (const o of objects) {
  const name = `${o.apiVersion} ${o.kind} ${o.metadata && o.metadata.name}`;
  const Model = modelFor(o.apiVersion, o.kind);
  if (!Model) {
    console.log(`NO SCHEMA ${name}`);
    failed++;
    continue;
  }
  try {
    new Model(o).validate();
    console.log(`valid ${name}`);
  } catch (e) {
    console.log(`INVALID ${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
