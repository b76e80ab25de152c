// The object store with the API server's write semantics: resourceVersions, generations, status
// subresources, finalizers, namespaces, garbage collection of dependents, and watch event streams.
import { randomInt, randomUUID } from 'node:crypto';
import { strategyFor, nameRuleFor, validateMeta, type CreateContext } from './builtin.js';
import { KubeApiError, alreadyExists, badRequest, conflict, invalid, notFound, type FieldError } from './errors.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { groupVersion, Registry, type ResourceType, type VersionInfo } from './resources.js';
import { applyDefaults, prune, validate } from './schema.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, type FieldRequirement, type Selector } from './selectors.js';
import { clone, isObject, jsonEqual, nowTimestamp, type Json, type JsonObject, type KubeObject } from './types.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  rv: number;
  rt: ResourceType;
  object: KubeObject;
  /** The object before a MODIFIED/DELETED change (selectors decide ADDED/DELETED from it). */
  prev?: KubeObject;
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface WriteOptions {
  dryRun?: boolean;
  fieldValidation?: FieldValidation;
  /** Receives `unknown field` warnings under fieldValidation=Warn. */
  warnings?: string[];
}

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';

export interface DeleteOptions {
  dryRun?: boolean;
  propagationPolicy?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface WatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  sendInitialEvents?: boolean;
}

export interface WatchEvent {
  type: EventType | 'BOOKMARK' | 'ERROR';
  object: KubeObject | JsonObject;
}

interface Watcher {
  rt: ResourceType;
  namespace?: string;
  labels: Selector;
  fields: FieldRequirement[];
  send(ev: WatchEvent): void;
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const CRD_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return s;
}

function key(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

function isNamespaceType(rt: ResourceType): boolean {
  return rt.group === '' && rt.plural === 'namespaces';
}

function isCrdType(rt: ResourceType): boolean {
  return rt.group === 'apiextensions.k8s.io' && rt.plural === 'customresourcedefinitions';
}

function resourceRef(rt: ResourceType): { group: string; plural: string } {
  return { group: rt.group, plural: rt.plural };
}

/** Spec-ish content: what bumps metadata.generation when it changes. */
function specPart(obj: KubeObject, withoutStatus: boolean): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'metadata' || k === 'apiVersion' || k === 'kind' || (withoutStatus && k === 'status') || v === undefined) continue;
    out[k] = v as Json;
  }
  return out;
}

function withoutRv(obj: KubeObject): KubeObject {
  const c = clone(obj);
  delete c.metadata.resourceVersion;
  delete c.metadata.managedFields;
  return c;
}

export class Store {
  readonly registry = new Registry();
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private rv = 1;
  private readonly log: StoreEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private nextIp = 10;
  private readonly createCtx: CreateContext = {
    allocateIp: () => {
      const n = this.nextIp++;
      return `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
    },
  };

  /** @param watchHistory how many past events a watch can resume from (older ones get 410 Expired). */
  constructor(private readonly watchHistory = 20_000) {
    const ns = this.registry.byPlural('', 'namespaces');
    if (!ns) throw new Error('namespaces type missing');
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      this.createT(ns, 'v1', undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    }
  }

  /** Current global resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /**
   * Controllers subscribe here; listeners run after the write, outside the writer's call stack.
   * Event objects are the store's own: read them, never modify them.
   */
  onEvent(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- convenience API by apiVersion + plural, for tests and the demo ----

  resolve(apiVersion: string, plural: string): { rt: ResourceType; version: string } {
    const slash = apiVersion.lastIndexOf('/');
    const [group, version] = slash >= 0 ? [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)] : ['', apiVersion];
    const rt = this.registry.lookup(group, version, plural);
    if (!rt) throw new KubeApiError('NotFound', 'the server could not find the requested resource');
    return { rt, version };
  }

  get(apiVersion: string, plural: string, namespace: string | undefined, name: string): KubeObject {
    const { rt, version } = this.resolve(apiVersion, plural);
    return this.getT(rt, version, namespace, name);
  }

  list(apiVersion: string, plural: string, namespace?: string, opts: ListOptions = {}): KubeObject[] {
    const { rt, version } = this.resolve(apiVersion, plural);
    return this.listT(rt, version, namespace, opts).items;
  }

  create(apiVersion: string, plural: string, obj: KubeObject): KubeObject {
    const { rt, version } = this.resolve(apiVersion, plural);
    return this.createT(rt, version, rt.namespaced ? (obj.metadata.namespace ?? 'default') : undefined, obj);
  }

  update(apiVersion: string, plural: string, obj: KubeObject, subresource?: 'status'): KubeObject {
    const { rt, version } = this.resolve(apiVersion, plural);
    const ns = rt.namespaced ? (obj.metadata.namespace ?? 'default') : undefined;
    return this.updateT(rt, version, ns, obj.metadata.name ?? '', obj, { subresource });
  }

  patch(apiVersion: string, plural: string, namespace: string | undefined, name: string, patch: Json, type: PatchType = 'merge', subresource?: 'status'): KubeObject {
    const { rt, version } = this.resolve(apiVersion, plural);
    return this.patchT(rt, version, namespace, name, type, patch, { subresource });
  }

  delete(apiVersion: string, plural: string, namespace: string | undefined, name: string): KubeObject {
    const { rt, version } = this.resolve(apiVersion, plural);
    return this.deleteT(rt, version, namespace, name).object;
  }

  // ---- typed operations used by the HTTP layer and controllers ----

  private bucket(rt: ResourceType): Map<string, KubeObject> {
    const k = `${rt.group}/${rt.plural}`;
    let b = this.data.get(k);
    if (!b) {
      b = new Map();
      this.data.set(k, b);
    }
    return b;
  }

  /** The object as served at `version` (objects are stored once for all served versions). */
  present(rt: ResourceType, version: string, obj: KubeObject): KubeObject {
    const out = clone(obj);
    out.apiVersion = groupVersion(rt.group, version);
    out.kind = rt.kind;
    return out;
  }

  private versionInfo(rt: ResourceType, version: string): VersionInfo {
    return rt.versions.find((v) => v.name === version) ?? rt.versions[0];
  }

  private scope(rt: ResourceType, ns: string | undefined): string | undefined {
    return rt.namespaced ? ns : undefined;
  }

  peek(rt: ResourceType, ns: string | undefined, name: string): KubeObject | undefined {
    return this.bucket(rt).get(key(this.scope(rt, ns), name));
  }

  getT(rt: ResourceType, version: string, ns: string | undefined, name: string): KubeObject {
    const o = this.peek(rt, ns, name);
    if (!o) throw notFound(resourceRef(rt), name);
    return this.present(rt, version, o);
  }

  private sorted(rt: ResourceType, ns: string | undefined): [string, KubeObject][] {
    const prefix = ns === undefined ? undefined : `${ns}/`;
    return [...this.bucket(rt)].filter(([k]) => prefix === undefined || k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  fieldLabels(rt: ResourceType): string[] {
    return ['metadata.name', ...(rt.namespaced ? ['metadata.namespace'] : []), ...rt.fieldLabels];
  }

  listT(rt: ResourceType, version: string, ns: string | undefined, opts: ListOptions = {}): ListResult {
    const labels = parseLabelSelector(opts.labelSelector);
    const fields = parseFieldSelector(opts.fieldSelector, this.fieldLabels(rt));
    let start = '';
    if (opts.continue) {
      try {
        const tok = JSON.parse(Buffer.from(opts.continue, 'base64url').toString('utf8')) as { start?: unknown };
        if (typeof tok.start !== 'string') throw new Error('bad token');
        start = tok.start;
      } catch {
        throw badRequest('invalid continue token');
      }
    }
    const matching = this.sorted(rt, this.scope(rt, ns)).filter(([k, o]) => k > start && matchesLabels(labels, o.metadata.labels) && matchesFields(fields, o));
    const limit = opts.limit && opts.limit > 0 ? opts.limit : matching.length;
    const page = matching.slice(0, limit);
    const result: ListResult = { items: page.map(([, o]) => this.present(rt, version, o)), resourceVersion: this.resourceVersion };
    if (matching.length > limit) {
      result.continue = Buffer.from(JSON.stringify({ start: page[page.length - 1][0] }), 'utf8').toString('base64url');
      result.remainingItemCount = matching.length - limit;
    }
    return result;
  }

  private checkNamespace(rt: ResourceType, ns: string | undefined, name: string): void {
    if (!rt.namespaced) return;
    const nsType = this.registry.byPlural('', 'namespaces');
    const nsObj = nsType && ns !== undefined ? this.peek(nsType, undefined, ns) : undefined;
    if (!nsObj) throw notFound({ group: '', plural: 'namespaces' }, ns ?? '');
    if (nsObj.metadata.deletionTimestamp) {
      throw new KubeApiError('Forbidden', `${rt.group ? `${rt.plural}.${rt.group}` : rt.plural} "${name}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`, {
        name,
        group: rt.group || undefined,
        kind: rt.plural,
      });
    }
  }

  /** Defaulting, pruning and validation against the CRD schema of `version`. */
  private applySchema(rt: ResourceType, version: string, obj: KubeObject, opts: WriteOptions): FieldError[] {
    const schema = this.versionInfo(rt, version).schema;
    if (!schema) return [];
    applyDefaults(obj as unknown as Json, schema);
    const unknown = prune(obj as unknown as Json, schema);
    if (unknown.length > 0) {
      if (opts.fieldValidation === 'Strict') {
        const list = unknown.map((u) => `unknown field "${u}"`);
        throw badRequest(`${rt.kind} in version "${version}" cannot be handled as a ${rt.kind}: strict decoding error: ${list.join(', ')}`);
      }
      if (opts.fieldValidation === 'Warn') opts.warnings?.push(...unknown.map((u) => `unknown field "${u}"`));
    }
    return validate(obj as unknown as Json, schema);
  }

  private checkBody(rt: ResourceType, version: string, body: unknown): KubeObject {
    if (!isObject(body)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    const obj = clone(body) as unknown as KubeObject;
    if (!isObject(obj.metadata)) obj.metadata = {};
    if (obj.kind !== undefined && obj.kind !== rt.kind) {
      throw badRequest(`the kind in the data (${String(obj.kind)}) does not match the expected kind (${rt.kind})`);
    }
    const gv = groupVersion(rt.group, version);
    if (obj.apiVersion !== undefined && obj.apiVersion !== gv) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`);
    }
    obj.apiVersion = gv;
    obj.kind = rt.kind;
    // ObjectMeta is a Go struct with omitempty maps and slices: empty ones are not stored.
    const meta = obj.metadata;
    for (const f of ['labels', 'annotations'] as const) if (meta[f] !== undefined && (meta[f] === null || Object.keys(meta[f] ?? {}).length === 0)) delete meta[f];
    for (const f of ['finalizers', 'ownerReferences'] as const) if (meta[f] !== undefined && (meta[f] === null || meta[f]?.length === 0)) delete meta[f];
    return obj;
  }

  createT(rt: ResourceType, version: string, ns: string | undefined, body: unknown, opts: WriteOptions = {}): KubeObject {
    const obj = this.checkBody(rt, version, body);
    const meta = obj.metadata;
    if (rt.namespaced) {
      if (meta.namespace && meta.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = ns;
    } else {
      delete meta.namespace;
    }
    if (!meta.name) {
      if (!meta.generateName) {
        throw invalid(rt.kind, rt.group, '', [{ field: 'metadata.name', type: 'FieldValueRequired', detail: 'Required value: name or generateName is required' }]);
      }
      meta.name = `${meta.generateName}${randomSuffix()}`;
    }
    const name = meta.name;
    this.checkNamespace(rt, ns, name);
    const strategy = strategyFor(rt.group, rt.plural);
    if (rt.crd && this.versionInfo(rt, version).status) delete obj.status;
    strategy.defaults?.(obj);
    strategy.prepareCreate?.(obj, this.createCtx);
    const errs = [...this.applySchema(rt, version, obj, opts), ...validateMeta(obj, nameRuleFor(rt.group, rt.plural)), ...(strategy.validate?.(obj, undefined) ?? [])];
    if (errs.length) throw invalid(rt.kind, rt.group, name, errs);
    meta.uid = randomUUID();
    meta.creationTimestamp = nowTimestamp();
    if (rt.generation) meta.generation = 1;
    else delete meta.generation;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.managedFields;
    delete meta.selfLink;
    if (this.peek(rt, ns, name)) throw alreadyExists(resourceRef(rt), name);
    if (opts.dryRun) return obj;
    meta.resourceVersion = String(++this.rv);
    this.bucket(rt).set(key(this.scope(rt, ns), name), obj);
    this.emit({ type: 'ADDED', rv: this.rv, rt, object: obj });
    return this.present(rt, version, obj);
  }

  updateT(rt: ResourceType, version: string, ns: string | undefined, name: string, body: unknown, opts: WriteOptions & { subresource?: 'status' } = {}): KubeObject {
    const old = this.peek(rt, ns, name);
    if (!old) throw notFound(resourceRef(rt), name);
    let obj = this.checkBody(rt, version, body);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (rt.namespaced && obj.metadata.namespace && obj.metadata.namespace !== ns) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const wantRv = obj.metadata.resourceVersion;
    if (wantRv && wantRv !== old.metadata.resourceVersion) throw conflict(resourceRef(rt), name);
    const vinfo = this.versionInfo(rt, version);
    if (opts.subresource === 'status') {
      const next = this.present(rt, version, old);
      if (obj.status === undefined) delete next.status;
      else next.status = obj.status;
      obj = next;
    } else if (vinfo.status) {
      if (old.status === undefined) delete obj.status;
      else obj.status = clone(old.status);
    }
    const meta = obj.metadata;
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'namespace', 'name'] as const) {
      if (old.metadata[f] === undefined) delete meta[f];
      else meta[f] = clone(old.metadata[f]) as never;
    }
    delete meta.managedFields;
    delete meta.selfLink;
    if (old.metadata.deletionTimestamp) {
      const added = (meta.finalizers ?? []).filter((f) => !(old.metadata.finalizers ?? []).includes(f));
      if (added.length) {
        throw invalid(rt.kind, rt.group, name, [
          { field: 'metadata.finalizers', type: 'FieldValueForbidden', detail: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}` },
        ]);
      }
    }
    const strategy = strategyFor(rt.group, rt.plural);
    strategy.defaults?.(obj);
    const errs = [...this.applySchema(rt, version, obj, opts), ...validateMeta(obj, nameRuleFor(rt.group, rt.plural)), ...(strategy.validate?.(obj, old) ?? [])];
    if (errs.length) throw invalid(rt.kind, rt.group, name, errs);
    if (rt.generation && !jsonEqual(specPart(obj, vinfo.status), specPart(old, vinfo.status))) {
      meta.generation = (old.metadata.generation ?? 0) + 1;
    }
    meta.resourceVersion = old.metadata.resourceVersion;
    if (jsonEqual(withoutRv(obj), withoutRv({ ...old, apiVersion: obj.apiVersion }))) return this.present(rt, version, old);
    if (opts.dryRun) return obj;
    meta.resourceVersion = String(++this.rv);
    this.bucket(rt).set(key(this.scope(rt, ns), name), obj);
    if (this.readyToRemove(rt, obj)) {
      this.remove(rt, obj, 'Background');
    } else {
      this.emit({ type: 'MODIFIED', rv: this.rv, rt, object: obj, prev: old });
    }
    return this.present(rt, version, obj);
  }

  patchT(rt: ResourceType, version: string, ns: string | undefined, name: string, type: PatchType, patch: Json, opts: WriteOptions & { subresource?: 'status'; fieldManager?: string } = {}): KubeObject {
    const cur = this.peek(rt, ns, name);
    if (!cur && type === 'apply') {
      if (!opts.fieldManager) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
      return this.createT(rt, version, ns, patch, opts);
    }
    if (!cur) throw notFound(resourceRef(rt), name);
    const base = this.present(rt, version, cur) as unknown as Json;
    let next: Json;
    switch (type) {
      case 'merge':
        next = mergePatch(base, patch);
        break;
      case 'json':
        next = jsonPatch(base, patch);
        break;
      case 'strategic':
        if (rt.crd) {
          throw new KubeApiError(
            'UnsupportedMediaType',
            'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
          );
        }
        next = strategicMergePatch(base, patch);
        break;
      case 'apply':
        // Server-side apply without field ownership tracking: the applied configuration is merged in.
        next = rt.crd ? mergePatch(base, patch) : strategicMergePatch(base, patch);
        break;
    }
    if (!isObject(next)) throw new KubeApiError('Invalid', 'the patch did not produce an object');
    return this.updateT(rt, version, ns, name, next, opts);
  }

  private readyToRemove(rt: ResourceType, obj: KubeObject): boolean {
    if (!obj.metadata.deletionTimestamp || (obj.metadata.finalizers?.length ?? 0) > 0) return false;
    if (isNamespaceType(rt)) {
      const spec = obj.spec;
      return !(isObject(spec) && Array.isArray(spec.finalizers) && spec.finalizers.length > 0);
    }
    return true;
  }

  deleteT(rt: ResourceType, version: string, ns: string | undefined, name: string, opts: DeleteOptions = {}): { object: KubeObject; removed: boolean } {
    const old = this.peek(rt, ns, name);
    if (!old) throw notFound(resourceRef(rt), name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw conflict(resourceRef(rt), name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid ?? ''}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(resourceRef(rt), name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion ?? ''}`);
    }
    if (opts.dryRun) return { object: this.present(rt, version, old), removed: false };
    const obj = clone(old);
    if (isCrdType(rt) && !(obj.metadata.finalizers ?? []).includes(CRD_FINALIZER)) {
      obj.metadata.finalizers = [...(obj.metadata.finalizers ?? []), CRD_FINALIZER];
    }
    if (isNamespaceType(rt) || (obj.metadata.finalizers?.length ?? 0) > 0) {
      if (old.metadata.deletionTimestamp) return { object: this.present(rt, version, old), removed: false };
      obj.metadata.deletionTimestamp = nowTimestamp();
      obj.metadata.deletionGracePeriodSeconds = 0;
      if (isNamespaceType(rt)) obj.status = { phase: 'Terminating' };
      obj.metadata.resourceVersion = String(++this.rv);
      this.bucket(rt).set(key(this.scope(rt, ns), name), obj);
      this.emit({ type: 'MODIFIED', rv: this.rv, rt, object: obj, prev: old });
      return { object: this.present(rt, version, obj), removed: false };
    }
    this.remove(rt, obj, opts.propagationPolicy ?? 'Background');
    return { object: this.present(rt, version, obj), removed: true };
  }

  /** Drops the object for good, then deletes (or orphans) the objects it owns. */
  private remove(rt: ResourceType, obj: KubeObject, propagation: string): void {
    const prev = clone(obj);
    obj.metadata.resourceVersion = String(++this.rv);
    this.bucket(rt).delete(key(this.scope(rt, obj.metadata.namespace), obj.metadata.name ?? ''));
    this.emit({ type: 'DELETED', rv: this.rv, rt, object: obj, prev });
    const uid = obj.metadata.uid;
    for (const depType of this.registry.all()) {
      for (const [, dep] of this.sorted(depType, undefined)) {
        const refs = dep.metadata.ownerReferences ?? [];
        if (!refs.some((r) => r.uid === uid)) continue;
        const version = depType.versions[0].name;
        const ns = dep.metadata.namespace;
        const depName = dep.metadata.name ?? '';
        if (propagation === 'Orphan') {
          this.patchT(depType, version, ns, depName, 'merge', { metadata: { ownerReferences: refs.filter((r) => r.uid !== uid) as unknown as Json } });
        } else if (refs.every((r) => r.uid === uid || !this.ownerExists(r.uid))) {
          if (this.peek(depType, ns, depName)) this.deleteT(depType, version, ns, depName);
        }
      }
    }
  }

  private ownerExists(uid: string): boolean {
    for (const b of this.data.values()) for (const o of b.values()) if (o.metadata.uid === uid) return true;
    return false;
  }

  deleteCollectionT(rt: ResourceType, version: string, ns: string | undefined, opts: ListOptions & DeleteOptions = {}): KubeObject[] {
    const { items } = this.listT(rt, version, ns, { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector });
    const out: KubeObject[] = [];
    for (const o of items) {
      if (!this.peek(rt, o.metadata.namespace, o.metadata.name ?? '')) continue;
      out.push(this.deleteT(rt, version, o.metadata.namespace, o.metadata.name ?? '', { dryRun: opts.dryRun, propagationPolicy: opts.propagationPolicy }).object);
    }
    return out;
  }

  /** Every object stored in namespace `ns`, across all namespaced types. */
  objectsInNamespace(ns: string): { rt: ResourceType; object: KubeObject }[] {
    const out: { rt: ResourceType; object: KubeObject }[] = [];
    for (const rt of this.registry.all()) {
      if (!rt.namespaced) continue;
      for (const [, o] of this.sorted(rt, ns)) out.push({ rt, object: o });
    }
    return out;
  }

  /** Every stored object of a type (the CRD controller empties a type before its CRD goes). */
  objectsOfType(rt: ResourceType): KubeObject[] {
    return [...this.bucket(rt).values()];
  }

  dropType(rt: ResourceType): void {
    this.data.delete(`${rt.group}/${rt.plural}`);
    this.registry.remove(rt.group, rt.plural);
  }

  private emit(e: StoreEvent): void {
    this.log.push(e);
    if (this.log.length > this.watchHistory) this.log.splice(0, this.log.length - this.watchHistory);
    for (const w of this.watchers) this.deliver(w, e);
    for (const l of this.listeners) setImmediate(() => l(e));
  }

  private deliver(w: Watcher, e: StoreEvent): void {
    if (w.rt !== e.rt && !(w.rt.group === e.rt.group && w.rt.plural === e.rt.plural)) return;
    if (w.namespace !== undefined && e.object.metadata.namespace !== w.namespace) return;
    const match = (o: KubeObject | undefined) => o !== undefined && matchesLabels(w.labels, o.metadata.labels) && matchesFields(w.fields, o);
    const now = match(e.object);
    if (e.type === 'MODIFIED') {
      const before = match(e.prev);
      if (now && before) w.send({ type: 'MODIFIED', object: e.object });
      else if (now) w.send({ type: 'ADDED', object: e.object });
      else if (before) w.send({ type: 'DELETED', object: e.object });
    } else if (e.type === 'DELETED' ? match(e.prev) : now) {
      w.send({ type: e.type, object: e.object });
    }
  }

  /**
   * Starts a watch. Throws (before anything is sent) on bad selectors; an expired resourceVersion is
   * reported in-stream as an ERROR event with a 410 Status, like the real server.
   */
  watchT(rt: ResourceType, ns: string | undefined, opts: WatchOptions, send: (ev: WatchEvent) => void): () => void {
    const w: Watcher = {
      rt,
      namespace: this.scope(rt, ns),
      labels: parseLabelSelector(opts.labelSelector),
      fields: parseFieldSelector(opts.fieldSelector, this.fieldLabels(rt)),
      send,
    };
    const rvParam = opts.resourceVersion;
    if (opts.sendInitialEvents || !rvParam || rvParam === '0') {
      for (const [, o] of this.sorted(rt, w.namespace)) {
        if (matchesLabels(w.labels, o.metadata.labels) && matchesFields(w.fields, o)) send({ type: 'ADDED', object: o });
      }
      if (opts.sendInitialEvents) {
        send({
          type: 'BOOKMARK',
          object: { kind: rt.kind, apiVersion: groupVersion(rt.group, rt.versions[0].name), metadata: { resourceVersion: this.resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } } },
        });
      }
    } else {
      if (!/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${rvParam}`);
      const from = Number(rvParam);
      const oldest = this.log.length ? this.log[0].rv : this.rv + 1;
      if (from < oldest - 1 && from < this.rv) {
        send({ type: 'ERROR', object: new KubeApiError('Expired', `too old resource version: ${from} (${oldest - 1})`).status() });
        return () => undefined;
      }
      for (const e of this.log) if (e.rv > from) this.deliver(w, e);
    }
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }
}
