// The three PATCH body formats the API server accepts: JSON merge patch (RFC 7386), JSON patch
// (RFC 6902) and strategic merge patch (built-in types only, lists merged by their patch merge key).
import { KubeApiError, badRequest } from './errors.js';
import { clone, isObject, jsonEqual, type Json, type JsonObject } from './types.js';

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

function patchFailed(message: string): KubeApiError {
  return new KubeApiError('Invalid', message);
}

function unescapePointer(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(p: unknown): string[] {
  if (typeof p !== 'string' || (p !== '' && !p.startsWith('/'))) throw badRequest(`invalid JSON pointer: ${String(p)}`);
  return p === '' ? [] : p.slice(1).split('/').map(unescapePointer);
}

/** Returns [container, key] for the last segment; container is an object or array inside doc. */
function locate(doc: Json, path: string[], op: string, pointer: string): [JsonObject | Json[], string] {
  let cur: Json = doc;
  for (const seg of path.slice(0, -1)) {
    if (Array.isArray(cur)) {
      const i = Number(seg);
      if (!/^\d+$/.test(seg) || i >= cur.length) throw patchFailed(`${op} operation does not apply: doc is missing path: "${pointer}": missing value`);
      cur = cur[i];
    } else if (isObject(cur) && Object.hasOwn(cur, seg)) {
      cur = cur[seg];
    } else {
      throw patchFailed(`${op} operation does not apply: doc is missing path: "${pointer}": missing value`);
    }
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw patchFailed(`${op} operation does not apply: doc is missing path: "${pointer}": missing value`);
  return [cur, path[path.length - 1]];
}

function getAt(doc: Json, path: string[], op: string, pointer: string): Json {
  if (path.length === 0) return doc;
  const [c, key] = locate(doc, path, op, pointer);
  if (Array.isArray(c)) {
    const i = Number(key);
    if (!/^\d+$/.test(key) || i >= c.length) throw patchFailed(`${op} operation does not apply: doc is missing path: "${pointer}": missing value`);
    return c[i];
  }
  if (!Object.hasOwn(c, key)) throw patchFailed(`${op} operation does not apply: doc is missing key: ${pointer}: missing value`);
  return c[key];
}

function removeAt(doc: Json, path: string[], op: string, pointer: string): Json {
  const [c, key] = locate(doc, path, op, pointer);
  if (Array.isArray(c)) {
    const i = Number(key);
    if (!/^\d+$/.test(key) || i >= c.length) throw patchFailed(`${op} operation does not apply: doc is missing path: "${pointer}": missing value`);
    return c.splice(i, 1)[0];
  }
  if (!Object.hasOwn(c, key)) throw patchFailed(`${op} operation does not apply: doc is missing key: ${pointer}: missing value`);
  const old = c[key];
  delete c[key];
  return old;
}

function addAt(doc: Json, path: string[], value: Json, op: string, pointer: string, replace: boolean): Json {
  if (path.length === 0) return value;
  const [c, key] = locate(doc, path, op, pointer);
  if (Array.isArray(c)) {
    if (key === '-' && !replace) {
      c.push(value);
      return doc;
    }
    const i = Number(key);
    if (!/^\d+$/.test(key) || i > c.length || (replace && i === c.length)) throw patchFailed(`${op} operation does not apply: doc is missing path: "${pointer}": missing value`);
    if (replace) c[i] = value;
    else c.splice(i, 0, value);
    return doc;
  }
  if (replace && !Object.hasOwn(c, key)) throw patchFailed(`${op} operation does not apply: doc is missing key: ${pointer}: missing value`);
  c[key] = value;
  return doc;
}

export function jsonPatch(target: Json, patch: Json): Json {
  if (!Array.isArray(patch)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = clone(target);
  for (const opv of patch) {
    if (!isObject(opv) || typeof opv.op !== 'string') throw badRequest('invalid JSON patch operation');
    const op = opv.op;
    const pointer = String(opv.path);
    const path = parsePointer(opv.path);
    switch (op) {
      case 'add':
        if (!('value' in opv)) throw badRequest(`add operation is missing "value"`);
        doc = addAt(doc, path, clone(opv.value), op, pointer, false);
        break;
      case 'replace':
        if (!('value' in opv)) throw badRequest(`replace operation is missing "value"`);
        doc = addAt(doc, path, clone(opv.value), op, pointer, true);
        break;
      case 'remove':
        removeAt(doc, path, op, pointer);
        break;
      case 'move': {
        const from = parsePointer(opv.from);
        const v = removeAt(doc, from, op, String(opv.from));
        doc = addAt(doc, path, v, op, pointer, false);
        break;
      }
      case 'copy': {
        const v = clone(getAt(doc, parsePointer(opv.from), op, String(opv.from)));
        doc = addAt(doc, path, v, op, pointer, false);
        break;
      }
      case 'test': {
        const v = getAt(doc, path, op, pointer);
        if (!jsonEqual(v, opv.value)) throw patchFailed(`testing value ${pointer} failed: test failed`);
        break;
      }
      default:
        throw badRequest(`Unexpected kind: ${op}`);
    }
  }
  return doc;
}

/** Lists of the built-in types whose patch strategy is "merge", by field name → merge key. */
const MERGE_KEYS: Record<string, string | ((items: Json[]) => string)> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  imagePullSecrets: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  hostAliases: 'ip',
  conditions: 'type',
  ownerReferences: 'uid',
  topologySpreadConstraints: 'topologyKey',
  resourceClaims: 'name',
  // container ports merge on containerPort, Service ports on port
  ports: (items) => (items.some((i) => isObject(i) && 'containerPort' in i) ? 'containerPort' : 'port'),
};

/** Primitive lists with strategy "merge": union of values. */
const MERGE_PRIMITIVES = new Set(['finalizers']);

function mergeList(field: string, orig: Json[], patch: Json[]): Json[] {
  if (patch.some((p) => isObject(p) && p.$patch === 'replace')) {
    return patch.filter((p) => !(isObject(p) && p.$patch === 'replace')).map(clone);
  }
  if (MERGE_PRIMITIVES.has(field)) {
    const out = [...orig];
    for (const p of patch) if (!out.some((o) => jsonEqual(o, p))) out.push(clone(p));
    return out;
  }
  const spec = MERGE_KEYS[field];
  if (!spec) return patch.map((p) => stripDirectives(p));
  const key = typeof spec === 'string' ? spec : spec([...orig, ...patch]);
  const out = orig.map(clone);
  for (const p of patch) {
    if (!isObject(p)) continue;
    const idx = out.findIndex((o) => isObject(o) && jsonEqual(o[key], p[key]));
    if (p.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
    } else if (idx >= 0) {
      out[idx] = strategicMergePatch(out[idx], p);
    } else {
      out.push(stripDirectives(p));
    }
  }
  return out;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('$')) continue;
    if (x !== null) out[k] = stripDirectives(x);
  }
  return out;
}

export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') return stripDirectives(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => jsonEqual(d, x)));
      continue;
    }
    if (k.startsWith('$')) continue;
    if (v === null) {
      delete out[k];
    } else if (isObject(v) && v.$patch === 'delete') {
      delete out[k];
    } else if (Array.isArray(v)) {
      const cur = out[k];
      out[k] = Array.isArray(cur) ? mergeList(k, cur, v) : mergeList(k, [], v);
    } else if (isObject(v)) {
      out[k] = strategicMergePatch(out[k] ?? null, v);
    } else {
      out[k] = v;
    }
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys.map(String));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}
