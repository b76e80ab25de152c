// Server-side printing: `kubectl get` asks for `Table` objects (Accept: …;as=Table;g=meta.k8s.io)
// and prints their rows, so each type gets the columns the real server would give it.
import type { PrinterColumn, ResourceType } from './resources.js';
import { isObject, type Json, type JsonObject, type KubeObject } from './types.js';

interface Column {
  name: string;
  type: string;
  format?: string;
  description: string;
  priority: number;
  cell(o: KubeObject): Json;
}

/** k8s.io/apimachinery's HumanDuration, as printed in AGE columns. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < -1) return '<invalid>';
  if (s < 0) return '0s';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 192) return h % 24 === 0 ? `${Math.floor(h / 24)}d` : `${Math.floor(h / 24)}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24)}d`;
  if (h < 24 * 365 * 8) {
    const days = Math.floor(h / 24) % 365;
    return days === 0 ? `${Math.floor(h / 24 / 365)}y` : `${Math.floor(h / 24 / 365)}y${days}d`;
  }
  return `${Math.floor(h / 24 / 365)}y`;
}

function age(ts: unknown): string {
  return typeof ts === 'string' ? humanDuration(Date.now() - Date.parse(ts)) : '<unknown>';
}

const obj = (v: unknown): JsonObject => (isObject(v) ? v : {});
const arr = (v: unknown): Json[] => (Array.isArray(v) ? v : []);

const NAME: Column = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0, cell: (o) => o.metadata.name ?? '' };
const AGE: Column = { name: 'Age', type: 'string', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.', priority: 0, cell: (o) => age(o.metadata.creationTimestamp) };

function col(name: string, type: string, cell: (o: KubeObject) => Json, priority = 0, description = ''): Column {
  return { name, type, description, priority, cell };
}

const ACCESS_MODES: Record<string, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' };

const BUILTIN_COLUMNS: Record<string, Column[]> = {
  '/namespaces': [NAME, col('Status', 'string', (o) => String(obj(o.status).phase ?? '')), AGE],
  '/secrets': [NAME, col('Type', 'string', (o) => String(o.type ?? '')), col('Data', 'string', (o) => Object.keys(obj(o.data)).length), AGE],
  '/configmaps': [NAME, col('Data', 'string', (o) => Object.keys(obj(o.data)).length + Object.keys(obj(o.binaryData)).length), AGE],
  '/serviceaccounts': [NAME, col('Secrets', 'string', (o) => arr(o.secrets).length), AGE],
  '/pods': [
    NAME,
    col('Ready', 'string', (o) => {
      const cs = arr(obj(o.status).containerStatuses);
      return `${cs.filter((c) => obj(c).ready === true).length}/${arr(obj(o.spec).containers).length}`;
    }),
    col('Status', 'string', (o) => (o.metadata.deletionTimestamp ? 'Terminating' : String(obj(o.status).phase ?? ''))),
    col('Restarts', 'string', (o) => arr(obj(o.status).containerStatuses).reduce<number>((n, c) => n + Number(obj(c).restartCount ?? 0), 0)),
    AGE,
    col('IP', 'string', (o) => String(obj(o.status).podIP ?? '<none>'), 1),
    col('Node', 'string', (o) => String(obj(o.spec).nodeName ?? '<none>'), 1),
    col('Nominated Node', 'string', () => '<none>', 1),
    col('Readiness Gates', 'string', () => '<none>', 1),
  ],
  '/services': [
    NAME,
    col('Type', 'string', (o) => String(obj(o.spec).type ?? '')),
    col('Cluster-IP', 'string', (o) => String(obj(o.spec).clusterIP ?? '<none>')),
    col('External-IP', 'string', () => '<none>'),
    col('Port(s)', 'string', (o) => arr(obj(o.spec).ports).map((p) => `${String(obj(p).port)}/${String(obj(p).protocol ?? 'TCP')}`).join(',') || '<none>'),
    AGE,
    col('Selector', 'string', (o) => Object.entries(obj(obj(o.spec).selector)).map(([k, v]) => `${k}=${String(v)}`).join(',') || '<none>', 1),
  ],
  '/persistentvolumeclaims': [
    NAME,
    col('Status', 'string', (o) => String(obj(o.status).phase ?? '')),
    col('Volume', 'string', (o) => String(obj(o.spec).volumeName ?? '')),
    col('Capacity', 'string', (o) => String(obj(obj(o.status).capacity).storage ?? '')),
    col('Access Modes', 'string', (o) => arr(obj(o.status).accessModes).map((m) => ACCESS_MODES[String(m)] ?? String(m)).join(',')),
    col('StorageClass', 'string', (o) => String(obj(o.spec).storageClassName ?? '<unset>')),
    AGE,
  ],
  '/events': [
    col('Last Seen', 'string', (o) => age(o.lastTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp)),
    col('Type', 'string', (o) => String(o.type ?? '')),
    col('Reason', 'string', (o) => String(o.reason ?? '')),
    col('Object', 'string', (o) => `${String(obj(o.involvedObject).kind ?? '').toLowerCase()}/${String(obj(o.involvedObject).name ?? '')}`),
    col('Message', 'string', (o) => String(o.message ?? '')),
  ],
  'apps/deployments': [
    NAME,
    col('Ready', 'string', (o) => `${Number(obj(o.status).readyReplicas ?? 0)}/${Number(obj(o.spec).replicas ?? 0)}`),
    col('Up-to-date', 'string', (o) => Number(obj(o.status).updatedReplicas ?? 0)),
    col('Available', 'string', (o) => Number(obj(o.status).availableReplicas ?? 0)),
    AGE,
    col('Containers', 'string', (o) => arr(obj(obj(obj(o.spec).template).spec).containers).map((c) => String(obj(c).name)).join(','), 1),
    col('Images', 'string', (o) => arr(obj(obj(obj(o.spec).template).spec).containers).map((c) => String(obj(c).image)).join(','), 1),
  ],
  'apiextensions.k8s.io/customresourcedefinitions': [NAME, col('Created At', 'date', (o) => o.metadata.creationTimestamp ?? null)],
};

/** Evaluates the JSONPath subset printer columns use: `.a.b`, `[0]`, `[*]`, `[?(@.k=="v")]`. */
export function jsonPath(root: unknown, path: string): unknown[] {
  let cur: unknown[] = [root];
  const re = /\.([^.[\]]+)|\[(\d+|\*)\]|\[\?\(@\.([^=!<>]+?)\s*==\s*["']?([^"')]*)["']?\)\]/gy;
  const p = path.replace(/^\{|\}$/g, '');
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (re.lastIndex < p.length && (m = re.exec(p))) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (m[1] !== undefined) {
        if (isObject(v) && v[m[1]] !== undefined) next.push(v[m[1]]);
      } else if (m[2] !== undefined) {
        if (Array.isArray(v)) {
          if (m[2] === '*') next.push(...v);
          else if (Number(m[2]) < v.length) next.push(v[Number(m[2])]);
        }
      } else if (Array.isArray(v)) {
        const field = m[3].split('.');
        next.push(...v.filter((x) => String(field.reduce<unknown>((a, k) => (isObject(a) ? a[k] : undefined), x)) === m![4]));
      }
    }
    cur = next;
  }
  return cur;
}

function crdColumns(columns: PrinterColumn[] | undefined): Column[] {
  if (!columns || columns.length === 0) return [NAME, AGE];
  return [
    NAME,
    ...columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format,
      description: c.description ?? '',
      priority: c.priority ?? 0,
      cell: (o: KubeObject): Json => {
        const v = jsonPath(o, c.jsonPath)[0];
        if (v === undefined || v === null) return null;
        if (c.type === 'date') return age(v);
        if (isObject(v) || Array.isArray(v)) return JSON.stringify(v);
        return v as Json;
      },
    })),
  ];
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function toTable(rt: ResourceType, version: string, items: KubeObject[], include: IncludeObject, listMeta: JsonObject): JsonObject {
  const cols = rt.crd ? crdColumns(rt.versions.find((v) => v.name === version)?.columns) : (BUILTIN_COLUMNS[`${rt.group}/${rt.plural}`] ?? [NAME, AGE]);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: cols.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description, priority: c.priority })),
    rows: items.map((o) => {
      const row: JsonObject = { cells: cols.map((c) => c.cell(o)) };
      if (include === 'Object') row.object = o as unknown as Json;
      else if (include === 'Metadata') row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata as unknown as Json };
      return row;
    }),
  };
}
