// The HTTP face of the simulated cluster: Kubernetes REST paths, verbs, content negotiation (JSON,
// Table, PartialObjectMetadata), chunked watch streams and the pods/exec WebSocket upgrade.
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import yaml from 'js-yaml';
import { Controllers } from './controllers.js';
import { KubeApiError, badRequest } from './errors.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { EXEC_PROTOCOLS, SPDY_EXEC_PROTOCOL, hostExec, serveExec, serveExecSpdy, type ExecHandler } from './exec.js';
import { SpdySession } from './spdy.js';
import { decodeProtobuf, isProtobuf } from './protobuf.js';
import { openapiDocument, openapiIndex } from './openapi.js';
import { groupInfo, groupList, groupVersion, resourceList, type ResourceType } from './resources.js';
import { Store, type FieldValidation, type PatchType, type WatchEvent } from './store.js';
import { toTable, type IncludeObject } from './tables.js';
import { isObject, type Json, type JsonObject, type KubeObject } from './types.js';
import { acceptWebSocket } from './websocket.js';

export interface ApiServerOptions {
  /** Interface to listen on; 127.0.0.1 by default. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Runs `kubectl exec` commands; hostExec by default. */
  execHandler?: ExecHandler;
  /** Events a watch can resume from; older resourceVersions get 410 Expired (default 20000). */
  watchHistory?: number;
}

export interface ApiServer {
  /** `http://host:port`. */
  url: string;
  /** A kubeconfig (YAML) pointing at this server with a dummy token; context namespace `default`. */
  kubeconfig: string;
  writeKubeconfig(path: string): Promise<void>;
  /** Ends watches and exec sessions, then stops listening. */
  close(): Promise<void>;
  /** Direct access to the cluster state, bypassing HTTP. */
  store: Store;
}

const MAX_BODY = 3 * 1024 * 1024;
const VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-kubesim',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2024-12-11T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const NOT_FOUND = () => new KubeApiError('NotFound', 'the server could not find the requested resource', {});

interface Target {
  rt: ResourceType;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: string;
  watchPrefix: boolean;
}

/** Maps `/api/v1/...` or `/apis/g/v/...` to the resource it names; undefined for non-resource paths. */
function parseTarget(store: Store, segs: string[]): Target | undefined {
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    [group, version, rest] = ['', segs[1], segs.slice(2)];
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    [group, version, rest] = [segs[1], segs[2], segs.slice(3)];
  } else {
    return undefined;
  }
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(group === '' && ['status', 'finalize'].includes(rest[2]) && rest.length === 3)) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  if (extra.length) throw NOT_FOUND();
  const rt = store.registry.lookup(group, version, plural);
  if (!rt) throw NOT_FOUND();
  if (namespace !== undefined && !rt.namespaced) throw NOT_FOUND();
  return { rt, version, namespace, name, subresource, watchPrefix };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new KubeApiError('RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseBody(raw: Buffer, contentType: string): Json {
  if (isProtobuf(contentType)) return decodeProtobuf(raw);
  const text = raw.toString('utf8');
  if (text.trim() === '') return null;
  try {
    if (/yaml/.test(contentType)) return yaml.load(text) as Json;
    return JSON.parse(text) as Json;
  } catch (err) {
    throw badRequest(`couldn't get version/kind; json parse error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}

function patchTypeOf(contentType: string): PatchType {
  const ct = contentType.split(';')[0].trim();
  switch (ct) {
    case 'application/merge-patch+json':
      return 'merge';
    case 'application/json-patch+json':
      return 'json';
    case 'application/strategic-merge-patch+json':
      return 'strategic';
    case 'application/apply-patch+yaml':
      return 'apply';
    default:
      throw new KubeApiError('UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
  }
}

type Rendering = { as: 'object' } | { as: 'table'; include: IncludeObject } | { as: 'metadata' };

/** Picks the first representation from Accept that we can produce. */
function negotiate(accept: string | undefined, include: string | null): Rendering {
  if (!accept) return { as: 'object' };
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim());
    const p = Object.fromEntries(params.map((x) => x.split('=').map((s) => s.trim()) as [string, string]));
    if (type !== 'application/json' && type !== '*/*' && type !== 'application/*') continue;
    if (p.as === 'Table' && p.g === 'meta.k8s.io') {
      const inc = include === 'Object' || include === 'None' ? include : 'Metadata';
      return { as: 'table', include: inc };
    }
    if ((p.as === 'PartialObjectMetadata' || p.as === 'PartialObjectMetadataList') && p.g === 'meta.k8s.io') return { as: 'metadata' };
    if (p.as === undefined) return { as: 'object' };
  }
  throw new KubeApiError('NotAcceptable', `only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf`);
}

function partial(o: KubeObject): JsonObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata as unknown as Json };
}

export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const exec = opts.execHandler ?? hostExec;
  const store = new Store(opts.watchHistory);
  const controllers = new Controllers(store);
  const watches = new Set<ServerResponse>();
  const upgraded = new Set<Duplex>();
  const shutdown = new AbortController();

  const send = (res: ServerResponse, code: number, body: unknown, warnings: string[] = []) => {
    const text = JSON.stringify(body);
    const headers: Record<string, string | string[]> = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) };
    if (warnings.length) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, headers);
    res.end(text);
  };

  const render = (t: Target, o: KubeObject, r: Rendering): unknown => {
    if (r.as === 'table') return toTable(t.rt, t.version, [o], r.include, { resourceVersion: o.metadata.resourceVersion ?? '' });
    if (r.as === 'metadata') return partial(o);
    return o;
  };

  const handleWatch = (req: IncomingMessage, res: ServerResponse, t: Target, q: URLSearchParams, r: Rendering) => {
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    let first = true;
    const write = (ev: WatchEvent) => {
      let object: unknown = ev.object;
      if (ev.type !== 'ERROR' && ev.type !== 'BOOKMARK') {
        const o = store.present(t.rt, t.version, ev.object as KubeObject);
        object = render(t, o, r);
        if (r.as === 'table' && !first && isObject(object)) delete object.columnDefinitions;
        first = false;
      }
      res.write(`${JSON.stringify({ type: ev.type, object })}\n`);
    };
    const events: WatchEvent[] = [];
    let started = false;
    const unsubscribe = store.watchT(
      t.rt,
      t.namespace,
      {
        labelSelector: q.get('labelSelector') ?? undefined,
        fieldSelector: q.get('fieldSelector') ?? undefined,
        resourceVersion: q.get('resourceVersion') ?? undefined,
        sendInitialEvents: q.get('sendInitialEvents') === 'true',
      },
      (ev) => (started ? write(ev) : events.push(ev)),
    );
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    started = true;
    for (const ev of events) write(ev);
    watches.add(res);
    const end = () => {
      unsubscribe();
      watches.delete(res);
      clearTimeout(timer);
      if (!res.writableEnded) res.end();
    };
    const timer = timeout > 0 ? setTimeout(end, timeout * 1000) : undefined;
    req.on('close', end);
    res.on('close', end);
    if (events.some((e) => e.type === 'ERROR')) end();
  };

  const handleResource = async (req: IncomingMessage, res: ServerResponse, t: Target, q: URLSearchParams) => {
    const method = req.method ?? 'GET';
    const { rt, version, namespace, name, subresource } = t;
    const accept = req.headers.accept;
    const contentType = String(req.headers['content-type'] ?? 'application/json');
    const warnings: string[] = [];
    const fv = q.get('fieldValidation');
    const writeOpts = {
      dryRun: q.getAll('dryRun').includes('All'),
      fieldValidation: (fv === 'Strict' || fv === 'Warn' || fv === 'Ignore' ? fv : undefined) as FieldValidation | undefined,
      warnings,
      fieldManager: q.get('fieldManager') ?? undefined,
    };
    const gv = groupVersion(rt.group, version);
    if (rt.namespaced && namespace === undefined && (name !== undefined || method === 'POST' || method === 'DELETE')) throw NOT_FOUND();

    if (t.watchPrefix && name !== undefined && subresource === undefined && method === 'GET') {
      // Deprecated /watch/…/{name} form: a watch of the collection narrowed to one name.
      const narrowed = new URLSearchParams(q);
      narrowed.set('fieldSelector', [q.get('fieldSelector'), `metadata.name=${name}`].filter(Boolean).join(','));
      return handleWatch(req, res, t, narrowed, negotiate(accept, q.get('includeObject')));
    }
    if (name === undefined) {
      const watching = t.watchPrefix || q.get('watch') === 'true' || q.get('watch') === '1';
      if (method === 'GET' && watching) return handleWatch(req, res, t, q, negotiate(accept, q.get('includeObject')));
      if (method === 'GET') {
        const r = negotiate(accept, q.get('includeObject'));
        const limit = Number(q.get('limit') ?? 0);
        const list = store.listT(rt, version, namespace, {
          labelSelector: q.get('labelSelector') ?? undefined,
          fieldSelector: q.get('fieldSelector') ?? undefined,
          limit: Number.isFinite(limit) ? limit : 0,
          continue: q.get('continue') ?? undefined,
        });
        const meta: JsonObject = { resourceVersion: list.resourceVersion };
        if (list.continue) meta.continue = list.continue;
        if (list.remainingItemCount !== undefined) meta.remainingItemCount = list.remainingItemCount;
        if (r.as === 'table') return send(res, 200, toTable(rt, version, list.items, r.include, meta));
        if (r.as === 'metadata') return send(res, 200, { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: meta, items: list.items.map(partial) });
        return send(res, 200, { kind: rt.listKind, apiVersion: gv, metadata: meta, items: list.items });
      }
      if (method === 'POST') {
        const body = parseBody(await readBody(req), contentType);
        const created = store.createT(rt, version, namespace, body, writeOpts);
        return send(res, 201, render(t, created, negotiate(accept, null)), warnings);
      }
      if (method === 'DELETE' && (rt.namespaced || rt.crd || rt.plural === 'customresourcedefinitions')) {
        const body = parseBody(await readBody(req), contentType);
        const opts = isObject(body) ? body : {};
        const items = store.deleteCollectionT(rt, version, namespace, {
          labelSelector: q.get('labelSelector') ?? undefined,
          fieldSelector: q.get('fieldSelector') ?? undefined,
          dryRun: writeOpts.dryRun || (Array.isArray(opts.dryRun) && opts.dryRun.includes('All')),
          propagationPolicy: typeof opts.propagationPolicy === 'string' ? opts.propagationPolicy : (q.get('propagationPolicy') ?? undefined),
        });
        return send(res, 200, { kind: rt.listKind, apiVersion: gv, metadata: { resourceVersion: store.resourceVersion }, items: items });
      }
      throw new KubeApiError('MethodNotAllowed', `the server does not allow this method on the requested resource`);
    }

    if (subresource === undefined || (subresource === 'status' && rt.versions.find((v) => v.name === version)?.status)) {
      const status = subresource === 'status' ? ('status' as const) : undefined;
      switch (method) {
        case 'GET':
          return send(res, 200, render(t, store.getT(rt, version, namespace, name), negotiate(accept, q.get('includeObject'))));
        case 'PUT': {
          const body = parseBody(await readBody(req), contentType);
          return send(res, 200, store.updateT(rt, version, namespace, name, body, { ...writeOpts, subresource: status }), warnings);
        }
        case 'PATCH': {
          const type = patchTypeOf(contentType);
          const body = parseBody(await readBody(req), contentType);
          if (type !== 'json' && !isObject(body)) throw badRequest('the patch must be a JSON object');
          return send(res, 200, store.patchT(rt, version, namespace, name, type, body, { ...writeOpts, subresource: status }), warnings);
        }
        case 'DELETE': {
          if (status) break;
          const body = parseBody(await readBody(req), contentType);
          const o = isObject(body) ? body : {};
          const pre = isObject(o.preconditions) ? o.preconditions : {};
          const { object, removed } = store.deleteT(rt, version, namespace, name, {
            dryRun: writeOpts.dryRun || (Array.isArray(o.dryRun) && o.dryRun.includes('All')),
            propagationPolicy: typeof o.propagationPolicy === 'string' ? o.propagationPolicy : (q.get('propagationPolicy') ?? undefined),
            preconditions: {
              uid: typeof pre.uid === 'string' ? pre.uid : undefined,
              resourceVersion: typeof pre.resourceVersion === 'string' ? pre.resourceVersion : undefined,
            },
          });
          if (removed && !rt.crd && rt.plural !== 'pods') {
            return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: rt.group || undefined, kind: rt.plural, uid: object.metadata.uid } });
          }
          return send(res, 200, object);
        }
      }
      throw new KubeApiError('MethodNotAllowed', `the server does not allow this method on the requested resource`);
    }

    if (rt.group === '' && rt.plural === 'namespaces' && subresource === 'finalize' && method === 'PUT') {
      const body = parseBody(await readBody(req), contentType);
      const cur = store.getT(rt, version, undefined, name);
      const finalizers = isObject(body) && isObject(body.spec) ? (body.spec.finalizers ?? []) : [];
      return send(res, 200, store.updateT(rt, version, undefined, name, { ...cur, spec: { ...(isObject(cur.spec) ? cur.spec : {}), finalizers } }));
    }
    if (rt.group === 'apps' && rt.plural === 'deployments' && subresource === 'scale') {
      const toScale = (d: KubeObject): JsonObject => ({
        kind: 'Scale',
        apiVersion: 'autoscaling/v1',
        metadata: { name: d.metadata.name ?? '', namespace: d.metadata.namespace ?? '', uid: d.metadata.uid ?? '', resourceVersion: d.metadata.resourceVersion ?? '', creationTimestamp: d.metadata.creationTimestamp ?? '' },
        spec: { replicas: isObject(d.spec) ? (d.spec.replicas ?? 0) : 0 },
        status: {
          replicas: isObject(d.status) ? (d.status.replicas ?? 0) : 0,
          selector: Object.entries(isObject(d.spec) && isObject(d.spec.selector) && isObject(d.spec.selector.matchLabels) ? d.spec.selector.matchLabels : {})
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(','),
        },
      });
      const cur = store.getT(rt, version, namespace, name);
      if (method === 'GET') return send(res, 200, toScale(cur));
      if (method === 'PUT' || method === 'PATCH') {
        const body = parseBody(await readBody(req), contentType);
        let scale: Json = toScale(cur);
        if (method === 'PUT') scale = body;
        else {
          const type = patchTypeOf(contentType);
          scale = type === 'json' ? jsonPatch(scale, body) : type === 'merge' ? mergePatch(scale, body) : strategicMergePatch(scale, body);
        }
        const replicas = isObject(scale) && isObject(scale.spec) ? scale.spec.replicas : undefined;
        if (typeof replicas !== 'number') throw badRequest('spec.replicas must be a number');
        const rv = isObject(scale) && isObject(scale.metadata) && typeof scale.metadata.resourceVersion === 'string' ? scale.metadata.resourceVersion : undefined;
        const updated = store.patchT(rt, version, namespace, name, 'merge', { metadata: rv ? { resourceVersion: rv } : {}, spec: { replicas } });
        return send(res, 200, toScale(updated));
      }
    }
    if (rt.group === '' && rt.plural === 'pods' && subresource === 'log' && method === 'GET') {
      store.getT(rt, version, namespace, name);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '0' });
      return res.end();
    }
    if (rt.group === '' && rt.plural === 'pods' && (subresource === 'exec' || subresource === 'attach' || subresource === 'portforward')) {
      throw badRequest('Upgrade request required');
    }
    throw NOT_FOUND();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const path = `/${segs.join('/')}`;
    if (req.method === 'GET') {
      if (path === '/version') return send(res, 200, VERSION);
      if (['/healthz', '/livez', '/readyz'].includes(path)) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return res.end('ok');
      }
      if (path === '/api') {
        const addr = server.address() as AddressInfo;
        return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `${host}:${addr.port}` }] });
      }
      if (path === '/apis') return send(res, 200, groupList(store.registry));
      if (segs[0] === 'apis' && segs.length === 2) {
        const g = groupInfo(store.registry, segs[1]);
        if (!g) throw NOT_FOUND();
        return send(res, 200, g);
      }
      if ((segs[0] === 'api' && segs.length === 2) || (segs[0] === 'apis' && segs.length === 3)) {
        const [group, version] = segs[0] === 'api' ? ['', segs[1]] : [segs[1], segs[2]];
        const list = resourceList(store.registry, group, version);
        if (!list) throw NOT_FOUND();
        return send(res, 200, list);
      }
      if (path === '/openapi/v2') {
        // An empty (but valid) document: kubectl then skips client-side validation of kinds it
        // cannot find there and reports unknown kinds as "no matches for kind", like with a real server.
        if (String(req.headers.accept ?? '').includes('protobuf')) {
          res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': '0' });
          return res.end();
        }
        return send(res, 200, { swagger: '2.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths: {}, definitions: {} });
      }
      if (path === '/openapi/v3') return send(res, 200, openapiIndex(store.registry));
      if (segs[0] === 'openapi' && segs[1] === 'v3' && (segs.length === 4 || segs.length === 5)) {
        const [group, version] = segs[2] === 'api' ? ['', segs[3]] : [segs[3], segs[4]];
        const doc = segs[2] === 'api' || segs.length === 5 ? openapiDocument(store.registry, group, version ?? '') : undefined;
        if (!doc) throw NOT_FOUND();
        return send(res, 200, doc);
      }
    }
    const target = parseTarget(store, segs);
    if (!target) throw NOT_FOUND();
    return handleResource(req, res, target, url.searchParams);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof KubeApiError ? err : new KubeApiError('InternalError', `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(res, e.code, e.status());
    });
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    socket.on('error', () => socket.destroy());
    const fail = (e: KubeApiError) => {
      const body = JSON.stringify(e.status());
      socket.end(`HTTP/1.1 ${e.code} ${e.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      const t = parseTarget(store, segs);
      if (!t || t.rt.group !== '' || t.rt.plural !== 'pods' || t.name === undefined || t.subresource !== 'exec') throw NOT_FOUND();
      const q = url.searchParams;
      const pod = store.getT(t.rt, t.version, t.namespace, t.name);
      const spec = isObject(pod.spec) ? pod.spec : {};
      const names = (Array.isArray(spec.containers) ? spec.containers : []).map((c) => (isObject(c) ? String(c.name) : ''));
      let container = q.get('container') ?? '';
      if (!container) {
        if (names.length !== 1) throw badRequest(`a container name must be specified for pod ${t.name}, choose one of: [${names.join(' ')}]`);
        container = names[0];
      }
      if (!names.includes(container)) throw badRequest(`container ${container} is not valid for pod ${t.name}`);
      const command = q.getAll('command');
      if (command.length === 0) throw badRequest('you must specify at least 1 command');
      if (!isObject(pod.status) || pod.status.phase !== 'Running') throw badRequest(`unable to upgrade connection: container not found ("${container}")`);
      const flag = (k: string) => q.get(k) === 'true' || q.get(k) === '1';
      const request = { pod, container, command, stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr') };
      const upgrade = String(req.headers.upgrade).toLowerCase();
      if (upgrade === 'spdy/3.1') {
        const offered = String(req.headers['x-stream-protocol-version'] ?? '').split(',').map((s) => s.trim());
        if (!offered.includes(SPDY_EXEC_PROTOCOL)) throw badRequest(`unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [${SPDY_EXEC_PROTOCOL}]`);
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${SPDY_EXEC_PROTOCOL}\r\n\r\n`);
        serveExecSpdy(new SpdySession(socket, head), request, exec, shutdown.signal).catch(() => socket.destroy());
        return;
      }
      if (upgrade !== 'websocket') throw badRequest(`unable to upgrade: unsupported protocol ${String(req.headers.upgrade)}`);
      const ws = acceptWebSocket(req, socket, head, EXEC_PROTOCOLS);
      if (!ws) return;
      serveExec(ws, request, exec, shutdown.signal).catch(() => socket.destroy());
    } catch (err) {
      fail(err instanceof KubeApiError ? err : new KubeApiError('InternalError', String(err)));
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  const kubeconfig = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: kubesim',
    '  cluster:',
    `    server: ${url}`,
    // client-node refuses plain http unless this is set; kubectl ignores it for http.
    '    insecure-skip-tls-verify: true',
    'contexts:',
    '- name: kubesim',
    '  context:',
    '    cluster: kubesim',
    '    user: kubesim',
    '    namespace: default',
    'current-context: kubesim',
    'users:',
    '- name: kubesim',
    '  user:',
    '    token: kubesim-dummy-token',
    '',
  ].join('\n');

  let closing: Promise<void> | undefined;
  return {
    url,
    kubeconfig,
    store,
    writeKubeconfig: (path: string) => writeFile(path, kubeconfig, { mode: 0o600 }),
    close() {
      closing ??= (async () => {
        controllers.stop();
        shutdown.abort();
        for (const w of watches) w.end();
        for (const s of upgraded) s.destroy();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
