// ucs2length.js — V6's stand-in for @kubernetes-models/validate/runtime/ucs2length
// (which re-exports ajv's): a string's length in Unicode code points, as JSON Schema's
// minLength / maxLength count it.
export default function ucs2length(s) {
  return [...s].length;
}
