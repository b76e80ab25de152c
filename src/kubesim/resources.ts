// The resource types the server knows (built-ins plus those registered by CRDs) and the discovery
// documents kubectl and client libraries read to map kinds to URLs.
import { schemaOf, type Schema } from './schema.js';
import { isObject, type JsonObject, type KubeObject } from './types.js';

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export interface VersionInfo {
  name: string;
  schema?: Schema;
  /** Has the /status subresource. */
  status: boolean;
  columns?: PrinterColumn[];
}

export interface ResourceType {
  group: string;
  /** Served versions; the first is the storage (preferred) version. */
  versions: VersionInfo[];
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** metadata.generation is kept and bumped on spec changes. */
  generation: boolean;
  /** Field labels usable in fieldSelector besides metadata.name/namespace. */
  fieldLabels: string[];
  /** Name of the CRD that defines this type; undefined for built-ins. */
  crd?: string;
}

const NS_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(group: string, version: string, plural: string, kind: string, o: Partial<ResourceType> & { status?: boolean } = {}): ResourceType {
  return {
    group,
    versions: [{ name: version, status: o.status ?? false }],
    plural,
    singular: kind.toLowerCase(),
    kind,
    listKind: `${kind}List`,
    namespaced: o.namespaced ?? true,
    shortNames: o.shortNames ?? [],
    categories: o.categories ?? [],
    generation: o.generation ?? false,
    fieldLabels: o.fieldLabels ?? [],
  };
}

function builtins(): ResourceType[] {
  return [
    builtin('', 'v1', 'namespaces', 'Namespace', { namespaced: false, shortNames: ['ns'], status: true, fieldLabels: ['status.phase'] }),
    builtin('', 'v1', 'secrets', 'Secret', { fieldLabels: ['type'] }),
    builtin('', 'v1', 'configmaps', 'ConfigMap', { shortNames: ['cm'] }),
    builtin('', 'v1', 'pods', 'Pod', {
      shortNames: ['po'],
      categories: ['all'],
      status: true,
      fieldLabels: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
    }),
    builtin('', 'v1', 'services', 'Service', { shortNames: ['svc'], categories: ['all'], status: true }),
    builtin('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', { shortNames: ['pvc'], status: true }),
    builtin('', 'v1', 'serviceaccounts', 'ServiceAccount', { shortNames: ['sa'] }),
    builtin('', 'v1', 'events', 'Event', {
      shortNames: ['ev'],
      fieldLabels: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
    }),
    builtin('apps', 'v1', 'deployments', 'Deployment', { shortNames: ['deploy'], categories: ['all'], status: true, generation: true }),
    builtin('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', {
      namespaced: false,
      shortNames: ['crd', 'crds'],
      categories: ['api-extensions'],
      status: true,
      generation: true,
    }),
  ];
}

/** Builds the resource type a CRD object declares; undefined when the CRD is unusable. */
export function typeFromCrd(crd: KubeObject): ResourceType | undefined {
  const spec = crd.spec;
  if (!isObject(spec) || !isObject(spec.names) || typeof spec.group !== 'string' || !Array.isArray(spec.versions)) return undefined;
  const names = spec.names;
  if (typeof names.plural !== 'string' || typeof names.kind !== 'string') return undefined;
  const versions: VersionInfo[] = [];
  for (const v of spec.versions) {
    if (!isObject(v) || typeof v.name !== 'string' || v.served === false) continue;
    const sub = isObject(v.subresources) ? v.subresources : {};
    const cols = Array.isArray(v.additionalPrinterColumns) ? v.additionalPrinterColumns.filter(isObject) : [];
    const info: VersionInfo = {
      name: v.name,
      schema: schemaOf(v),
      status: isObject(sub.status),
      columns: cols.map((c: JsonObject) => ({
        name: String(c.name),
        type: String(c.type ?? 'string'),
        format: typeof c.format === 'string' ? c.format : undefined,
        description: typeof c.description === 'string' ? c.description : undefined,
        priority: typeof c.priority === 'number' ? c.priority : 0,
        jsonPath: String(c.jsonPath),
      })),
    };
    if (v.storage === true) versions.unshift(info);
    else versions.push(info);
  }
  if (versions.length === 0) return undefined;
  const str = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
  return {
    group: spec.group,
    versions,
    plural: names.plural,
    singular: typeof names.singular === 'string' && names.singular ? names.singular : names.kind.toLowerCase(),
    kind: names.kind,
    listKind: typeof names.listKind === 'string' && names.listKind ? names.listKind : `${names.kind}List`,
    namespaced: spec.scope !== 'Cluster',
    shortNames: str(names.shortNames),
    categories: str(names.categories),
    generation: true,
    fieldLabels: [],
    crd: crd.metadata.name,
  };
}

/** Every type the server serves, keyed by `group/plural`. */
export class Registry {
  private readonly types = new Map<string, ResourceType>();

  constructor() {
    for (const t of builtins()) this.add(t);
  }

  add(t: ResourceType): void {
    this.types.set(`${t.group}/${t.plural}`, t);
  }

  remove(group: string, plural: string): void {
    this.types.delete(`${group}/${plural}`);
  }

  /** The type served at `group/version/plural`, if that version is served. */
  lookup(group: string, version: string, plural: string): ResourceType | undefined {
    const t = this.types.get(`${group}/${plural}`);
    return t && t.versions.some((v) => v.name === version) ? t : undefined;
  }

  byPlural(group: string, plural: string): ResourceType | undefined {
    return this.types.get(`${group}/${plural}`);
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }

  /** Groups with their served versions, core group excluded; built-in groups first like the real server. */
  groups(): { name: string; versions: string[] }[] {
    const out = new Map<string, Set<string>>();
    for (const t of this.types.values()) {
      if (t.group === '') continue;
      const set = out.get(t.group) ?? new Set<string>();
      for (const v of t.versions) set.add(v.name);
      out.set(t.group, set);
    }
    return [...out].map(([name, vs]) => ({ name, versions: sortVersions([...vs]) }));
  }
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first. */
export function sortVersions(vs: string[]): string[] {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [3, 0, 0];
    return [m[2] === 'alpha' ? 2 : m[2] === 'beta' ? 1 : 0, -Number(m[1]), -Number(m[3] ?? 0)];
  };
  return [...vs].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] || a.localeCompare(b);
  });
}

export function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/** `APIResourceList` for one group/version, subresources included. */
export function resourceList(registry: Registry, group: string, version: string): JsonObject | undefined {
  const resources: JsonObject[] = [];
  for (const t of registry.all()) {
    if (t.group !== group) continue;
    const v = t.versions.find((x) => x.name === version);
    if (!v) continue;
    const verbs = t.namespaced || t.crd || t.plural === 'customresourcedefinitions' ? NS_VERBS : NS_VERBS.filter((x) => x !== 'deletecollection');
    const r: JsonObject = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs };
    if (t.shortNames.length) r.shortNames = t.shortNames;
    if (t.categories.length) r.categories = t.categories;
    resources.push(r);
    if (v.status) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
    if (t.group === '' && t.plural === 'pods') {
      resources.push({ name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] });
      resources.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
    }
    if (t.group === 'apps' && t.plural === 'deployments') {
      resources.push({ name: 'deployments/scale', singularName: '', namespaced: true, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
    }
  }
  if (resources.length === 0) return undefined;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(group, version), resources };
}

function apiGroup(g: { name: string; versions: string[] }): JsonObject {
  const versions = g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v }));
  return { name: g.name, versions, preferredVersion: versions[0] };
}

export function groupList(registry: Registry): JsonObject {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: registry.groups().map(apiGroup) };
}

export function groupInfo(registry: Registry, name: string): JsonObject | undefined {
  const g = registry.groups().find((x) => x.name === name);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(g) } : undefined;
}
