// Validate Kubernetes documents (a multi-document YAML on stdin, e.g. `kustomize build`) against the
// schemas generated from the Kubernetes API and from the operators' CRDs (kubernetes-models packages, offline).
// Prints one JSON line per document ({kind, name, ok, errors}) and exits 1 when any document fails or has no
// schema: an unknown kind is an error, not a pass.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const PACKAGES = {
  "kafka.strimzi.io": "@kubernetes-models/strimzi-kafka-operator",
  "keda.sh": "@kubernetes-models/keda",
  "external-secrets.io": "@kubernetes-models/external-secrets",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const pkg = PACKAGES[group];
  const path = pkg ? `${pkg}/${group}/${version}/${kind}` : `kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`;
  const module = await import(path).catch(() => null);
  return module && module[kind];
}

const docs = yaml.loadAll(readFileSync(0, "utf8")).filter(Boolean);
let failed = 0;
for (const doc of docs) {
  const name = doc.metadata?.name ?? "?";
  const Model = await modelFor(doc.apiVersion ?? "", doc.kind ?? "");
  let errors = [];
  if (!Model) {
    errors = [`no schema for ${doc.apiVersion} ${doc.kind}`];
  } else {
    try {
      new Model(doc).validate();
    } catch (error) {
      errors = [String(error.message ?? error)];
    }
  }
  if (errors.length) failed += 1;
  console.log(JSON.stringify({ apiVersion: doc.apiVersion, kind: doc.kind, name, ok: errors.length === 0, errors }));
}
console.log(JSON.stringify({ documents: docs.length, failed }));
process.exit(failed ? 1 : 0);
