// formats.js — the string/number formats the vendored validators ask
// @kubernetes-models/validate for (int32, int64, double, byte, date-time, quantity), written for V6
// so the validators run without ajv-formats. The byte and quantity expressions follow
// @kubernetes-models/validate 5.0.2 (dist/formats.js, MIT) and apimachinery's quantity.go.
const rSignedNumber = /[+-]?(?:\d+|\d+\.\d+|\d+\.|\.\d+)/;
const rQuantitySuffix = new RegExp(`(?:[KMGTPE]i|(?:[YZEPTGMkhdcmunpfazy]|da)|[eE]${rSignedNumber.source})?`);
const rQuantity = new RegExp(`^${rSignedNumber.source}${rQuantitySuffix.source}$`);
const rBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
export const formats = {
  int32: { type: "number", validate: (v) => Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 },
  int64: { type: "number", validate: (v) => Number.isInteger(v) },
  double: { type: "number", validate: () => true },
  float: { type: "number", validate: () => true },
  byte: { type: "string", validate: (v) => rBase64.test(v) },
  // RFC 3339 as ajv-formats' full "date-time": a date, "T", a time with seconds and a zone
  "date-time": { type: "string", validate: (v) =>
    /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$/.test(v) &&
    !Number.isNaN(Date.parse(v)) },
  quantity: { type: "string", validate: rQuantity },  // a RegExp, as upstream
};
