// Checks Kubernetes manifests offline against the API's JSON schemas, as
// the kubernetes-models package embeds them (Kubernetes 1.27): each
// document of each file must be an object of a known apiVersion and kind
// whose fields have the types and the required keys the schema says.
// Run by scripts/check-manifests, which installs the packages beside this
// file's copy.
//
//   node check-manifests.mjs [--configs DIR] FILE...
//
// Prints one line per problem, FILE: document N (KIND NAME): ..., and
// exits 1 when there is any, 0 when every document is valid. With
// --configs, each ConfigMap key named pincer.yaml is written to DIR as
// NAME.pincer.yaml, for pincerd --check-config.
import { readFileSync, writeFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
let configsDir = null;
if (args[0] === "--configs") {
  configsDir = args[1];
  args.splice(0, 2);
}
if (args.length === 0) {
  console.error("usage: check-manifests.mjs [--configs DIR] FILE...");
  process.exit(2);
}

let problems = 0;
let checked = 0;
const report = (where, message) => {
  console.log(`${where}: ${message}`);
  problems++;
};

for (const file of args) {
  let docs;
  try {
    docs = parseAllDocuments(readFileSync(file, "utf8"));
  } catch (e) {
    report(file, `cannot read: ${e.message}`);
    continue;
  }
  let n = 0;
  for (const doc of docs) {
    n++;
    const where = `${file}: document ${n}`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) report(where, `YAML: ${e.message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;  // an empty document
    if (typeof obj !== "object" || Array.isArray(obj)) {
      report(where, "is not a Kubernetes object (a map with apiVersion and kind)");
      continue;
    }
    const { apiVersion, kind } = obj;
    if (typeof apiVersion !== "string" || typeof kind !== "string") {
      report(where, "apiVersion and kind must be strings");
      continue;
    }
    const name = obj.metadata && obj.metadata.name;
    const what = `${where} (${kind} ${name ?? "?"})`;
    let mod;
    try {
      mod = await import(`kubernetes-models/${apiVersion}`);
    } catch {
      report(what, `unknown apiVersion '${apiVersion}'`);
      continue;
    }
    const Model = mod[kind];
    if (typeof Model !== "function" || Model.apiVersion !== apiVersion || Model.kind !== kind) {
      report(what, `unknown kind '${kind}' in ${apiVersion}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      report(what, e.message);
      continue;
    }
    if (typeof name !== "string" || name === "") {
      report(what, "metadata.name is missing");
      continue;
    }
    checked++;
    if (configsDir && kind === "ConfigMap" && obj.data && typeof obj.data["pincer.yaml"] === "string") {
      writeFileSync(`${configsDir}/${name}.pincer.yaml`, obj.data["pincer.yaml"]);
    }
  }
}
if (problems > 0) {
  console.log(`${problems} problem(s) in ${args.length} file(s)`);
  process.exit(1);
}
if (checked === 0) {
  console.log("no Kubernetes object found");
  process.exit(1);
}
console.log(`${checked} object(s) in ${args.length} file(s): valid`);
