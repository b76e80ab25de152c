// Structural OpenAPI v3 schemas of CustomResourceDefinitions: defaulting, pruning of unknown fields
// and validation, with field errors worded like the real API server's.
import type { FieldError } from './errors.js';
import { clone, isObject, jsonEqual, type Json, type JsonObject } from './types.js';

/** The subset of JSONSchemaProps a structural CRD schema uses. */
export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: Json[];
  default?: Json;
  nullable?: boolean;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  not?: Schema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}

function child(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function typeName(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Go's %v-ish rendering used in "Invalid value: …". */
function show(v: Json): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(typeName(v));
}

/** Fills in `default`s of missing properties, the way the server does on decode. */
export function applyDefaults(value: Json, schema: Schema | undefined): Json {
  if (!schema) return value;
  if (isObject(value)) {
    if (schema.properties) {
      for (const [k, s] of Object.entries(schema.properties)) {
        if (value[k] === undefined && s.default !== undefined) value[k] = clone(s.default);
        if (value[k] !== undefined) value[k] = applyDefaults(value[k], s);
      }
    }
    if (isObject(schema.additionalProperties)) {
      for (const k of Object.keys(value)) {
        if (!schema.properties?.[k]) value[k] = applyDefaults(value[k], schema.additionalProperties);
      }
    }
  } else if (Array.isArray(value) && schema.items) {
    for (let i = 0; i < value.length; i++) value[i] = applyDefaults(value[i], schema.items);
  }
  return value;
}

const ROOT_FIELDS = ['apiVersion', 'kind', 'metadata'];

/** Drops fields the schema does not declare; returns their paths (for strict field validation). */
export function prune(value: Json, schema: Schema | undefined, path = '', root = true): string[] {
  const dropped: string[] = [];
  if (!schema) return dropped;
  if (isObject(value)) {
    const keepMeta = root || schema['x-kubernetes-embedded-resource'] === true;
    for (const k of Object.keys(value)) {
      if (keepMeta && ROOT_FIELDS.includes(k)) continue;
      const s = schema.properties?.[k] ?? (isObject(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined);
      if (s) {
        dropped.push(...prune(value[k], s, child(path, k), false));
      } else if (schema['x-kubernetes-preserve-unknown-fields'] !== true && schema.additionalProperties !== true) {
        dropped.push(child(path, k));
        delete value[k];
      }
    }
  } else if (Array.isArray(value) && schema.items) {
    value.forEach((v, i) => dropped.push(...prune(v, schema.items, `${path}[${i}]`, false)));
  }
  return dropped;
}

const patterns = new Map<string, RegExp | null>();

/** CRD patterns are RE2; the few RE2-only constructs JavaScript rejects are not checked. */
function compilePattern(p: string): RegExp | undefined {
  let re = patterns.get(p);
  if (re === undefined) {
    try {
      re = new RegExp(p, 'u');
    } catch {
      re = null;
    }
    patterns.set(p, re);
  }
  return re ?? undefined;
}

export function validate(value: Json, schema: Schema | undefined, path = ''): FieldError[] {
  if (!schema) return [];
  const errs: FieldError[] = [];
  const at = path || '<root>';
  const invalid = (detail: string) => errs.push({ field: at, type: 'FieldValueInvalid', detail: `Invalid value: ${detail}` });

  if (value === null) {
    if (schema.nullable || !schema.type) return errs;
    invalid(`"null": ${at} in body must be of type ${schema.type}: "null"`);
    return errs;
  }
  const t = typeName(value);
  if (schema['x-kubernetes-int-or-string']) {
    if (t !== 'integer' && t !== 'string') invalid(`"${t}": ${at} in body must be of type integer,string: "${t}"`);
  } else if (schema.type) {
    const ok = schema.type === t || (schema.type === 'number' && t === 'integer');
    if (!ok) {
      invalid(`"${t}": ${at} in body must be of type ${schema.type}: "${t}"`);
      return errs;
    }
  }
  if (schema.enum && !schema.enum.some((e) => jsonEqual(e, value))) {
    errs.push({
      field: at,
      type: 'FieldValueNotSupported',
      detail: `Unsupported value: ${show(value)}: supported values: ${schema.enum.map((e) => show(e)).join(', ')}`,
    });
  }
  if (typeof value === 'string') {
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      errs.push({ field: at, type: 'FieldValueTooLong', detail: `Too long: may not be more than ${schema.maxLength} bytes` });
    }
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      invalid(`${show(value)}: ${at} in body should be at least ${schema.minLength} chars long`);
    }
    const re = schema.pattern === undefined ? undefined : compilePattern(schema.pattern);
    if (re && !re.test(value)) {
      invalid(`${show(value)}: ${at} in body should match '${schema.pattern}'`);
    }
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)) {
      invalid(`${value}: ${at} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`);
    }
    if (schema.maximum !== undefined && (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum)) {
      invalid(`${value}: ${at} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`);
    }
    if (schema.multipleOf !== undefined && value % schema.multipleOf !== 0) {
      invalid(`${value}: ${at} in body should be a multiple of ${schema.multipleOf}`);
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      invalid(`${value.length}: ${at} in body should have at least ${schema.minItems} items`);
    }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      errs.push({ field: at, type: 'FieldValueTooMany', detail: `Too many: ${value.length}: must have at most ${schema.maxItems} items` });
    }
    if (schema.uniqueItems || schema['x-kubernetes-list-type'] === 'set') {
      value.forEach((v, i) => {
        if (value.findIndex((w) => jsonEqual(v, w)) < i) errs.push({ field: `${at}[${i}]`, type: 'FieldValueDuplicate', detail: `Duplicate value: ${show(v)}` });
      });
    }
    if (schema['x-kubernetes-list-type'] === 'map' && schema['x-kubernetes-list-map-keys']) {
      const keys = schema['x-kubernetes-list-map-keys'];
      value.forEach((v, i) => {
        const key = (x: Json) => (isObject(x) ? keys.map((k) => x[k]) : []);
        if (value.findIndex((w) => jsonEqual(key(v), key(w))) < i) {
          errs.push({ field: `${at}[${i}]`, type: 'FieldValueDuplicate', detail: `Duplicate value: ${JSON.stringify(Object.fromEntries(keys.map((k, j) => [k, key(v)[j]])))}` });
        }
      });
    }
    if (schema.items) value.forEach((v, i) => errs.push(...validate(v, schema.items, `${path}[${i}]`)));
  }
  if (isObject(value)) {
    for (const r of schema.required ?? []) {
      if (value[r] === undefined) errs.push({ field: child(path, r), type: 'FieldValueRequired', detail: 'Required value' });
    }
    const n = Object.keys(value).length;
    if (schema.minProperties !== undefined && n < schema.minProperties) {
      invalid(`${n}: ${at} in body should have at least ${schema.minProperties} properties`);
    }
    if (schema.maxProperties !== undefined && n > schema.maxProperties) {
      errs.push({ field: at, type: 'FieldValueTooMany', detail: `Too many: ${n}: must have at most ${schema.maxProperties} items` });
    }
    for (const [k, v] of Object.entries(value)) {
      if (path === '' && ROOT_FIELDS.includes(k)) continue;
      const s = schema.properties?.[k] ?? (isObject(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined);
      if (s) errs.push(...validate(v, s, child(path, k)));
    }
  }
  const what = `"${t}"`;
  if (schema.allOf) for (const s of schema.allOf) errs.push(...validate(value, s, path));
  if (schema.oneOf) {
    const results = schema.oneOf.map((s) => validate(value, s, path));
    const ok = results.filter((r) => r.length === 0).length;
    if (ok !== 1) {
      invalid(`${what}: ${at} in body must validate one and only one schema (oneOf). ${ok === 0 ? 'Found none valid' : `Found ${ok} valid alternatives`}`);
      if (ok === 0) errs.push(...results.reduce((best, r) => (r.length < best.length ? r : best)));
    }
  }
  if (schema.anyOf) {
    const results = schema.anyOf.map((s) => validate(value, s, path));
    if (!results.some((r) => r.length === 0)) {
      invalid(`${what}: ${at} in body must validate at least one schema (anyOf)`);
      errs.push(...results.reduce((best, r) => (r.length < best.length ? r : best)));
    }
  }
  if (schema.not && validate(value, schema.not, path).length === 0) {
    invalid(`${what}: ${at} in body must not validate the schema (not)`);
  }
  return errs;
}

/** Reads a CRD version's schema out of `spec.versions[].schema.openAPIV3Schema`. */
export function schemaOf(version: JsonObject): Schema | undefined {
  const s = isObject(version.schema) ? version.schema.openAPIV3Schema : undefined;
  return isObject(s) ? (s as unknown as Schema) : undefined;
}
