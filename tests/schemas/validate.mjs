// validate.mjs — checks Kubernetes objects against the vendored upstream schemas:
// the compiled validators of kubernetes-models / Argo Rollouts / Gateway API (types,
// required fields, enums, patterns, limits) and, as Kubernetes' strict field validation
// does, unknown fields (fields.json). Called by tests/schemas/check.py.
// Usage: node validate.mjs FILE.json  (a JSON array of {"source", "doc"});
// prints one JSON line per document: {"source", "kind", "errors": [...]} or "skipped".
import { readFileSync } from "node:fs";

const here = new URL(".", import.meta.url);
const kinds = JSON.parse(readFileSync(new URL("kinds.json", here))).kinds;
const fields = JSON.parse(readFileSync(new URL("fields.json", here)));

function fmt(e) {
  const p = e.instancePath.replace(/^\//, "").replace(/\//g, ".") || "(root)";
  return `${p}: ${e.keyword} ${JSON.stringify(e.params)}`;
}

// Fields a strict decoder rejects: every object key must be a property of its type.
function unknown(v, type, path, out) {
  if (type === null || v === null || typeof v !== "object")
    return;
  if (Array.isArray(type)) {
    const [shape, inner] = type;
    if (shape === "array" && Array.isArray(v))
      v.forEach((x, i) => unknown(x, inner, `${path}[${i}]`, out));
    else if (shape === "map" && !Array.isArray(v))
      for (const k of Object.keys(v)) unknown(v[k], inner, `${path}.${k}`, out);
    return;
  }
  const props = fields[type];
  if (!props || Array.isArray(v))
    return;
  for (const k of Object.keys(v)) {
    const p = path ? `${path}.${k}` : k;
    if (!(k in props))
      out.push(`${p}: unknown field "${k}"`);
    else
      unknown(v[k], props[k].type, p, out);
  }
}

const docs = JSON.parse(readFileSync(process.argv[2]));
for (const { source, doc } of docs) {
  const kind = kinds.find((k) => k.apiVersion === doc.apiVersion && k.kind === doc.kind);
  const id = `${doc.apiVersion}/${doc.kind}`;
  if (!kind) {
    console.log(JSON.stringify({ source, kind: id, skipped: true }));
    continue;
  }
  const mod = await import(new URL(`node_modules/${kind.package}/_schemas/${kind.schema}.js`, here));
  const errors = [];
  if (!mod.validate(doc))
    errors.push(...mod.validate.errors.map(fmt));
  unknown(doc, `${kind.package}/${kind.model}`, "", errors);
  console.log(JSON.stringify({ source, kind: id, errors }));
}
