// A form generated from a service's parameters (openEO parameter objects with JSON Schemas). A GeoJSON
// parameter is not a field: it is the area on the map.
import { field, h } from "./dom.js";

const schemasOf = (parameter) => (Array.isArray(parameter.schema) ? parameter.schema : [parameter.schema || {}]);

export function isArea(parameter) {
  return schemasOf(parameter).some((s) => s.subtype === "geojson" || (s.type === "object" && /geojson|bounding-box/.test(s.subtype || "")));
}

function control(parameter) {
  const schema = schemasOf(parameter).find((s) => s.type !== "null") || {};
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  const required = !parameter.optional;
  const value = parameter.default;
  if (Array.isArray(schema.enum)) {
    return h("select", { name: parameter.name, required }, schema.enum.map((option) => h("option", { value: option, selected: option === value }, option)));
  }
  if (type === "boolean") return h("input", { type: "checkbox", name: parameter.name, checked: value === true });
  if (type === "number" || type === "integer") {
    return h("input", { type: "number", name: parameter.name, required, step: type === "integer" ? 1 : "any", min: schema.minimum, max: schema.maximum, value });
  }
  if (type === "string" && (schema.subtype === "date" || schema.format === "date")) {
    return h("input", { type: "date", name: parameter.name, required, value });
  }
  if (type === "string") return h("input", { type: "text", name: parameter.name, required, value });
  return h("textarea", { name: parameter.name, required, rows: 3, "data-json": true }, value === undefined ? "" : JSON.stringify(value));
}

export function parameterFields(parameters) {
  return parameters.filter((p) => !isArea(p)).map((p) => field(`${p.name}${p.optional ? "" : " (required)"}`, control(p), p.description));
}

export function parameterValues(form, parameters, area) {
  const values = {};
  for (const parameter of parameters) {
    if (isArea(parameter)) {
      if (area) values[parameter.name] = area;
      continue;
    }
    const input = form.elements.namedItem(parameter.name);
    if (!input) continue;
    if (input.type === "checkbox") values[parameter.name] = input.checked;
    else if (input.value === "") continue;
    else if (input.type === "number") values[parameter.name] = Number(input.value);
    else if (input.dataset.json !== undefined) values[parameter.name] = JSON.parse(input.value);
    else values[parameter.name] = input.value;
  }
  return values;
}
