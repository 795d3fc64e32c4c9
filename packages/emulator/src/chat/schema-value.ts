/**
 * A deterministic value that satisfies a JSON Schema: what the emulated models put in tool-call
 * arguments and `json_schema` answers. Supports `type` (also arrays of types), `const`, `enum`,
 * `default`, `examples`, `properties`/`required`, `items`/`prefixItems`, `minItems`,
 * `minLength`/`maxLength`, `format` (date, date-time, time, email, uri, uuid), `minimum`/
 * `maximum` (and exclusive), `multipleOf`, `anyOf`/`oneOf` (the first branch), `allOf`
 * (merged), `nullable`, and local `$ref`s (`#/$defs/…`, `#/definitions/…`). `pattern` is not
 * honoured.
 */

type Schema = Record<string, unknown>;

function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function resolveRef(ref: string, root: Schema): Schema {
  if (!ref.startsWith('#')) return {};
  let node: unknown = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(part.replace(/~1/g, '/').replace(/~0/g, '~'));
    node = isObject(node) ? node[key] : undefined;
  }
  return isObject(node) ? node : {};
}

function mergeAll(schemas: unknown[], root: Schema, depth: number): Schema {
  const merged: Schema = { type: 'object', properties: {}, required: [] };
  for (const s of schemas) {
    const part = isObject(s) ? (typeof s.$ref === 'string' ? resolveRef(s.$ref, root) : s) : {};
    if (isObject(part.properties))
      Object.assign(merged.properties as Schema, part.properties as Schema);
    if (Array.isArray(part.required)) (merged.required as unknown[]).push(...part.required);
    if (part.type !== undefined && part.type !== 'object')
      return deref(part, root, depth) as Schema;
  }
  return merged;
}

function deref(schema: Schema, root: Schema, depth: number): Schema {
  if (typeof schema.$ref === 'string' && depth < 32) return resolveRef(schema.$ref, root);
  return schema;
}

function typeOf(schema: Schema): string | undefined {
  const t = schema.type;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x) => x !== 'null') ?? t[0]) as string | undefined;
  if (isObject(schema.properties)) return 'object';
  if (schema.items !== undefined) return 'array';
  return undefined;
}

function stringValue(schema: Schema): string {
  switch (schema.format) {
    case 'date':
      return '2025-01-01';
    case 'date-time':
      return '2025-01-01T00:00:00Z';
    case 'time':
      return '00:00:00';
    case 'email':
      return 'user@example.com';
    case 'uri':
    case 'url':
      return 'https://example.com/';
    case 'uuid':
      return '00000000-0000-4000-8000-000000000000';
  }
  let text = 'example';
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  while (text.length < min) text += 'x';
  if (typeof schema.maxLength === 'number') text = text.slice(0, Math.max(schema.maxLength, min));
  return text;
}

function numberValue(schema: Schema, integer: boolean): number {
  const min =
    typeof schema.minimum === 'number'
      ? schema.minimum
      : typeof schema.exclusiveMinimum === 'number'
        ? schema.exclusiveMinimum + (integer ? 1 : 0.5)
        : undefined;
  const max =
    typeof schema.maximum === 'number'
      ? schema.maximum
      : typeof schema.exclusiveMaximum === 'number'
        ? schema.exclusiveMaximum - (integer ? 1 : 0.5)
        : undefined;
  let value = min ?? (max !== undefined && max < 1 ? max : 1);
  if (integer) value = Math.ceil(value);
  const step =
    typeof schema.multipleOf === 'number' && schema.multipleOf > 0 ? schema.multipleOf : 0;
  if (step) value = Math.ceil(value / step) * step;
  return value;
}

/** A value valid against `schema` (whose local `$ref`s resolve against `root`). */
export function valueFor(schema: unknown, root: unknown = schema, depth = 0): unknown {
  if (schema === true || schema === undefined) return 'example';
  if (!isObject(schema)) return null;
  const rootSchema = isObject(root) ? root : {};
  const s = deref(schema, rootSchema, depth);
  if (s !== schema) return valueFor(s, rootSchema, depth + 1);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  if ('default' in s) return s.default;
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = s[key];
    if (Array.isArray(branches) && branches.length > 0) {
      const first =
        branches.find((b) => !(isObject(b) && b.type === 'null')) ?? (branches[0] as unknown);
      return valueFor(first, rootSchema, depth + 1);
    }
  }
  if (Array.isArray(s.allOf))
    return valueFor(mergeAll(s.allOf, rootSchema, depth), rootSchema, depth + 1);
  switch (typeOf(s)) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = isObject(s.properties) ? s.properties : {};
      for (const [name, sub] of Object.entries(props))
        out[name] = valueFor(sub, rootSchema, depth + 1);
      return out;
    }
    case 'array': {
      const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
      const min = typeof s.minItems === 'number' ? s.minItems : 1;
      const max = typeof s.maxItems === 'number' ? s.maxItems : Number.POSITIVE_INFINITY;
      const count = Math.min(Math.max(min, prefix.length, 1), max);
      const out: unknown[] = [];
      for (let i = 0; i < count; i++) {
        out.push(valueFor(i < prefix.length ? prefix[i] : s.items, rootSchema, depth + 1));
      }
      return out;
    }
    case 'string':
      return stringValue(s);
    case 'integer':
      return numberValue(s, true);
    case 'number':
      return numberValue(s, false);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return {};
  }
}
