// kubesim, the in-process Kubernetes API server, driven by the real kubectl and by
// @kubernetes/client-node 1.4 — the two clients whose expectations it has to meet.
import { PassThrough, Readable, Writable } from 'node:stream';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Exec,
  KubeConfig,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type V1Status,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer, type ExecHandler, type KubeObject } from '../src/kubesim/index.js';
import { kubectlFor, type Kubectl } from './helpers/kubectl.js';

const WIDGET_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Phase, type: string, jsonPath: .status.phase}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            oneOf:
            - required: [colour]
            - required: [pattern]
            properties:
              size: {type: integer, minimum: 1}
              colour: {type: string, enum: [red, blue]}
              pattern: {type: string}
              mode: {type: string, default: normal}
          status:
            type: object
            properties:
              phase: {type: string}
`;

const GADGET_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`;

function widget(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name }, spec });
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Obj {
  metadata: { name: string; resourceVersion: string; generation?: number; labels?: Record<string, string>; deletionTimestamp?: string; finalizers?: string[] };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
  items?: Obj[];
}

describe('kubesim driven by kubectl', () => {
  let server: ApiServer;
  let k: Kubectl;

  beforeAll(async () => {
    server = await startApiServer();
    k = await kubectlFor(server);
  });

  afterAll(async () => {
    await k?.close();
    await server?.close();
  });

  it('serves version and discovery with short names', async () => {
    const v = await k.json<{ serverVersion: { major: string; minor: string } }>(['version']);
    expect(v.serverVersion).toMatchObject({ major: '1', minor: '32' });
    const r = await k.ok(['api-resources', '--no-headers']);
    const rows = r.stdout.split('\n').map((l) => l.trim().split(/\s+/));
    const short = (name: string) => rows.find((c) => c[0] === name)?.[1];
    expect(short('configmaps')).toBe('cm');
    expect(short('services')).toBe('svc');
    expect(short('persistentvolumeclaims')).toBe('pvc');
    expect(short('namespaces')).toBe('ns');
    expect(short('deployments')).toBe('deploy');
    expect(short('pods')).toBe('po');
  });

  it('creates, labels, selects and deletes namespaces', async () => {
    await k.ok(['create', 'namespace', 'team-a']);
    await k.ok(['create', 'namespace', 'team-b']);
    await k.ok(['label', 'namespace', 'team-a', 'tier=gold']);
    await k.ok(['label', 'namespace', 'team-b', 'tier=silver']);
    const gold = await k.json<Obj>(['get', 'ns', '-l', 'tier=gold']);
    expect(gold.items?.map((i) => i.metadata.name)).toEqual(['team-a']);
    const ns = await k.json<Obj>(['get', 'ns', 'team-a']);
    expect(ns.metadata.labels).toMatchObject({ tier: 'gold', 'kubernetes.io/metadata.name': 'team-a' });
    expect(ns.status?.phase).toBe('Active');
    const del = await k.ok(['delete', 'namespace', 'team-b', '--timeout=20s']);
    expect(del.stdout).toContain('namespace "team-b" deleted');
    const gone = await k.run(['get', 'ns', 'team-b']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('Error from server (NotFound): namespaces "team-b" not found');
  });

  it('creates secrets from literals and patches them (strategic merge)', async () => {
    await k.ok(['create', 'secret', 'generic', 'creds', '--from-literal=user=admin', '--from-literal=password=s3 cr3t']);
    const s = await k.json<Obj & { type: string }>(['get', 'secret', 'creds']);
    expect(s.type).toBe('Opaque');
    expect(Buffer.from(s.data?.password ?? '', 'base64').toString()).toBe('s3 cr3t');
    await k.ok(['patch', 'secret', 'creds', '-p', '{"stringData":{"extra":"v"}}']);
    const p = await k.json<Obj>(['get', 'secret', 'creds']);
    expect(Object.keys(p.data ?? {}).sort()).toEqual(['extra', 'password', 'user']);
    expect(Buffer.from(p.data?.extra ?? '', 'base64').toString()).toBe('v');
    const dup = await k.run(['create', 'secret', 'generic', 'creds', '--from-literal=a=b']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('secrets "creds" already exists');
    const missing = await k.run(['get', 'secret', 'nope']);
    expect(missing.stderr).toContain('Error from server (NotFound): secrets "nope" not found');
  });

  it('applies configmaps twice, selects them by label and field, rejects stale updates', async () => {
    const cm = (v: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app: web, env: prod}\ndata:\n  key: ${v}\n`;
    const f = await k.file('cm.yaml', cm('one'));
    expect((await k.ok(['apply', '-f', f])).stdout).toContain('configmap/settings created');
    await k.file('cm.yaml', cm('two'));
    expect((await k.ok(['apply', '-f', f])).stdout).toContain('configmap/settings configured');
    const got = await k.json<Obj>(['get', 'cm', 'settings']);
    expect(got.data).toEqual({ key: 'two' });
    await k.ok(['create', 'configmap', 'other', '--from-literal=a=1']);
    await k.ok(['label', 'cm', 'other', 'app=db']);
    const names = async (...args: string[]) => (await k.json<Obj>(['get', 'cm', ...args])).items?.map((i) => i.metadata.name) ?? [];
    expect(await names('-l', 'app=web')).toEqual(['settings']);
    expect(await names('-l', 'app in (web,db)')).toEqual(['other', 'settings']);
    expect(await names('-l', 'app notin (web)')).toEqual(['other']);
    expect(await names('-l', 'app!=db,env')).toEqual(['settings']);
    expect(await names('-l', '!env,app')).toEqual(['other']);
    expect(await names('--field-selector', 'metadata.name=other')).toEqual(['other']);
    const bad = await k.run(['get', 'cm', '--field-selector', 'data.key=x']);
    expect(bad.stderr).toContain('field label not supported: data.key');

    // replace with a resourceVersion that is no longer current: 409 Conflict
    const stale = { ...got, data: { key: 'three' } };
    await k.ok(['label', 'cm', 'settings', 'bump=1']);
    const rf = await k.file('stale.json', JSON.stringify(stale));
    const r = await k.run(['replace', '-f', rf]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Operation cannot be fulfilled on configmaps "settings": the object has been modified');
  });

  it('registers a CRD, serves its custom resources and validates them against the schema', async () => {
    const f = await k.file('crd.yaml', WIDGET_CRD);
    await k.ok(['apply', '-f', f]);
    await k.ok(['wait', '--for=condition=Established', 'crd/widgets.example.com', '--timeout=10s']);
    const res = await k.ok(['api-resources', '--api-group=example.com', '--no-headers']);
    expect(res.stdout).toMatch(/^widgets\s+wd\s+example.com\/v1\s+true\s+Widget/m);

    await k.ok(['apply', '-f', await k.file('w1.json', widget('w1', { size: 3, colour: 'red' }))]);
    const w = await k.json<Obj>(['get', 'widget', 'w1']);
    expect(w.spec).toEqual({ size: 3, colour: 'red', mode: 'normal' });
    expect(w.metadata.generation).toBe(1);

    const table = await k.ok(['get', 'wd']);
    expect(table.stdout).toMatch(/^NAME\s+SIZE\s+PHASE\s*$/m);
    expect(table.stdout).toMatch(/^w1\s+3\s*$/m);

    const invalid = await k.run(['apply', '-f', await k.file('bad.json', widget('bad', { size: 'x', colour: 'green' }))]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('The Widget "bad" is invalid');
    expect(invalid.stderr).toContain('spec.colour: Unsupported value: "green": supported values: "red", "blue"');
    expect(invalid.stderr).toContain('spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"');

    const neither = await k.run(['create', '-f', await k.file('neither.json', widget('neither', { size: 1 }))]);
    expect(neither.stderr).toContain('The Widget "neither" is invalid');
    expect(neither.stderr).toContain('must validate one and only one schema (oneOf)');
    const both = await k.run(['create', '-f', await k.file('both.json', widget('both', { size: 1, colour: 'red', pattern: 'dots' }))]);
    expect(both.stderr).toContain('Found 2 valid alternatives');

    const unknown = await k.run(['create', '-f', await k.file('unknown.json', widget('unknown', { size: 1, colour: 'red', shade: 'dark' }))]);
    expect(unknown.stderr).toContain('strict decoding error: unknown field "spec.shade"');

    const smp = await k.run(['patch', 'widget', 'w1', '-p', '{"spec":{"size":4}}']);
    expect(smp.stderr).toContain('application/strategic-merge-patch+json is not supported');
  });

  it('keeps status behind the status subresource and bumps generation on spec changes', async () => {
    await k.ok(['patch', 'widget', 'w1', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Ready"}}']);
    let w = await k.json<Obj>(['get', 'widget', 'w1']);
    expect(w.status).toEqual({ phase: 'Ready' });
    expect(w.metadata.generation).toBe(1);
    // a main-resource patch cannot touch status, and a metadata-only change leaves generation alone
    await k.ok(['patch', 'widget', 'w1', '--type=merge', '-p', '{"status":{"phase":"Hacked"},"metadata":{"labels":{"a":"b"}}}']);
    w = await k.json<Obj>(['get', 'widget', 'w1']);
    expect(w.status).toEqual({ phase: 'Ready' });
    expect(w.metadata.generation).toBe(1);
    await k.ok(['patch', 'widget', 'w1', '--type=json', '-p', '[{"op":"replace","path":"/spec/size","value":5}]']);
    w = await k.json<Obj>(['get', 'widget', 'w1']);
    expect(w.spec?.size).toBe(5);
    expect(w.metadata.generation).toBe(2);
    expect((await k.ok(['get', 'wd', 'w1', '--no-headers'])).stdout).toMatch(/^w1\s+5\s+Ready\s*$/m);
  });

  it('serves cluster-scoped resources in every served version', async () => {
    await k.ok(['apply', '-f', await k.file('gadget-crd.yaml', GADGET_CRD)]);
    await k.ok(['wait', '--for=condition=Established', 'crd/gadgets.example.com', '--timeout=10s']);
    await k.ok(['apply', '-f', await k.file('g.json', JSON.stringify({ apiVersion: 'example.com/v1beta1', kind: 'Gadget', metadata: { name: 'g1' }, anything: { goes: true } }))]);
    const g = await k.json<Obj & { apiVersion: string; anything: unknown }>(['get', 'gadgets.v1.example.com', 'g1']);
    expect(g.apiVersion).toBe('example.com/v1');
    expect(g.anything).toEqual({ goes: true });
    expect((g.metadata as { namespace?: string }).namespace).toBeUndefined();
    await k.ok(['delete', 'crd', 'gadgets.example.com', '--timeout=20s']);
    const crd = await k.run(['get', 'crd', 'gadgets.example.com']);
    expect(crd.stderr).toContain('customresourcedefinitions.apiextensions.k8s.io "gadgets.example.com" not found');
    // kubectl's discovery cache may still know the type; either way the server no longer serves it
    const gone = await k.run(['get', 'gadgets']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/the server could not find the requested resource|the server doesn't have a resource type "gadgets"/);
  });

  it('decodes the protobuf bodies of typed kubectl create commands', async () => {
    await k.ok(['create', 'serviceaccount', 'robot']);
    await k.ok(['create', 'service', 'clusterip', 'api', '--tcp=80:8080']);
    const svc = await k.json<Obj>(['get', 'svc', 'api']);
    expect(svc.spec).toMatchObject({ type: 'ClusterIP', selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] });
    expect(svc.spec?.clusterIP).toMatch(/^10\.96\./);
    const f = await k.file('blob.bin', 'line1\nline2\n');
    await k.ok(['create', 'configmap', 'files', `--from-file=blob=${f}`]);
    expect((await k.json<Obj>(['get', 'cm', 'files'])).data).toEqual({ blob: 'line1\nline2\n' });
    await k.ok(['create', 'secret', 'generic', 'tls-like', '--from-literal=tls.key=k', '--type=example.com/custom']);
    expect((await k.json<{ type: string }>(['get', 'secret', 'tls-like'])).type).toBe('example.com/custom');
  });

  it('streams ADDED and MODIFIED events to kubectl get -w', async () => {
    await k.ok(['create', 'configmap', 'watched', '--from-literal=a=1']);
    const w = k.stream(['get', 'cm', 'watched', '-w', '--output-watch-events'], 20_000);
    try {
      await w.waitFor((out) => /ADDED\s+watched/.test(out));
      await k.ok(['label', 'cm', 'watched', 'seen=yes']);
      await w.waitFor((out) => /MODIFIED\s+watched/.test(out));
    } finally {
      await w.stop();
    }
  });

  it('runs kubectl exec with exit codes, stderr, stdin and the container env', async () => {
    const pod = `apiVersion: v1\nkind: Pod\nmetadata: {name: shell, labels: {app: shell}}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    env:\n    - {name: GREETING, value: hello-from-pod}\n`;
    await k.ok(['apply', '-f', await k.file('pod.yaml', pod)]);
    await k.ok(['wait', '--for=condition=Ready', 'pod/shell', '--timeout=10s']);
    const r = await k.run(['exec', 'shell', '--', 'sh', '-c', 'echo hi; echo err >&2; exit 3']);
    expect(r.stdout).toBe('hi\n');
    expect(r.stderr).toContain('err\n');
    expect(r.stderr).toContain('command terminated with exit code 3');
    expect(r.code).toBe(3);
    const i = await k.ok(['exec', '-i', 'shell', '--', 'sh', '-c', 'cat; echo "$GREETING"'], { input: 'from stdin\n' });
    expect(i.stdout).toBe('from stdin\nhello-from-pod\n');
    const big = await k.ok(['exec', 'shell', '--', 'sh', '-c', 'head -c 3000000 /dev/zero']);
    expect(big.stdoutBytes.length).toBe(3_000_000);
    const bad = await k.run(['exec', 'shell', '-c', 'nope', '--', 'true']);
    expect(bad.stderr).toContain('container nope is not valid for pod shell');
  });

  it('runs kubectl exec over SPDY too (older kubectl, or WebSockets turned off)', async () => {
    const env = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
    const r = await k.run(['exec', 'shell', '-v=6', '--', 'sh', '-c', 'echo hi; echo err >&2; exit 4'], { env });
    expect(r.stderr).toMatch(/POST \S+\/exec\?\S+ 101 Switching Protocols/);
    expect(r.stdout).toBe('hi\n');
    expect(r.stderr).toContain('err\n');
    expect(r.code).toBe(4);
    const input = 'y'.repeat(200_000);
    const i = await k.ok(['exec', '-i', 'shell', '--', 'sh', '-c', 'wc -c; echo "$GREETING"'], { input, env });
    expect(i.stdout.split(/\s+/).filter(Boolean)).toEqual(['200000', 'hello-from-pod']);
  });

  it('runs deployments as pods and scales them to zero', async () => {
    await k.ok(['create', 'deployment', 'db', '--image=postgres:16', '--replicas=2']);
    await k.ok(['wait', '--for=condition=Available', 'deployment/db', '--timeout=10s']);
    const d = await k.json<Obj>(['get', 'deploy', 'db']);
    expect(d.status).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 2 });
    const pods = await k.json<Obj>(['get', 'pods', '-l', 'app=db']);
    expect(pods.items?.length).toBe(2);
    expect(pods.items?.every((p) => p.status?.phase === 'Running' && p.metadata.name.startsWith('db-'))).toBe(true);
    await k.ok(['scale', 'deployment', 'db', '--replicas=0']);
    await eventually('pods of db to go away', async () => ((await k.json<Obj>(['get', 'pods', '-l', 'app=db'])).items?.length === 0 ? true : undefined));
  });

  it('deletes everything in a namespace, waiting for finalizers', async () => {
    await k.ok(['create', 'namespace', 'doomed']);
    await k.ok(['-n', 'doomed', 'create', 'configmap', 'c', '--from-literal=a=b']);
    await k.ok(['-n', 'doomed', 'create', '-f', await k.file('held.json', widget('held', { size: 1, pattern: 'x' }))]);
    await k.ok(['-n', 'doomed', 'patch', 'widget', 'held', '--type=merge', '-p', '{"metadata":{"finalizers":["example.com/hold"]}}']);
    await k.ok(['delete', 'namespace', 'doomed', '--wait=false']);
    const held = await eventually('the configmap to go and the widget to be marked', async () => {
      const cms = await k.json<Obj>(['-n', 'doomed', 'get', 'cm']);
      const w = await k.json<Obj>(['-n', 'doomed', 'get', 'widget', 'held']);
      return cms.items?.length === 0 && w.metadata.deletionTimestamp ? w : undefined;
    });
    expect(held.metadata.finalizers).toEqual(['example.com/hold']);
    expect((await k.json<Obj>(['get', 'ns', 'doomed'])).status?.phase).toBe('Terminating');
    const refused = await k.run(['-n', 'doomed', 'create', 'configmap', 'late']);
    expect(refused.stderr).toContain('unable to create new content in namespace doomed because it is being terminated');
    await k.ok(['-n', 'doomed', 'patch', 'widget', 'held', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
    await eventually('namespace doomed to disappear', async () => ((await k.run(['get', 'ns', 'doomed'])).stderr.includes('NotFound') ? true : undefined));
  });
});

describe('kubesim driven by @kubernetes/client-node', () => {
  let server: ApiServer;
  let kc: KubeConfig;
  const ns = 'client';

  beforeAll(async () => {
    server = await startApiServer();
    kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('CoreV1Api: secrets and configmaps, merge patch, label selectors, 404 and 409', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's' }, stringData: { token: 'abc' } } });
    const s = await core.readNamespacedSecret({ namespace: ns, name: 's' });
    expect(Buffer.from(s.data?.token ?? '', 'base64').toString()).toBe('abc');

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a', labels: { role: 'x' } }, data: { k: '1' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'b', labels: { role: 'y' } } } });
    const list = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'role=x' });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['a']);

    const patched = await core.patchNamespacedConfigMap(
      { namespace: ns, name: 'a', body: { data: { k: '2', extra: 'e' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.data).toEqual({ k: '2', extra: 'e' });

    const stale = { ...list.items[0], data: { k: 'stale' } };
    await expect(core.replaceNamespacedConfigMap({ namespace: ns, name: 'a', body: stale })).rejects.toMatchObject({ code: 409 });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'b' });
    const err = await core.readNamespacedConfigMap({ namespace: ns, name: 'b' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<string>).code).toBe(404);
    expect(JSON.parse((err as ApiException<string>).body)).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'configmaps "b" not found' });
  });

  it('CustomObjectsApi: create, status patch, list and a 422 for an invalid object', async () => {
    server.store.create('apiextensions.k8s.io/v1', 'customresourcedefinitions', (await import('js-yaml')).default.load(WIDGET_CRD) as KubeObject);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const ref = { group: 'example.com', version: 'v1', namespace: ns, plural: 'widgets' };
    await eventually('widgets to be served', () => custom.listNamespacedCustomObject(ref));
    await custom.createNamespacedCustomObject({ ...ref, body: JSON.parse(widget('w', { size: 2, colour: 'blue' })) as object });
    await custom.patchNamespacedCustomObjectStatus(
      { ...ref, name: 'w', body: { status: { phase: 'Done' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const got = (await custom.getNamespacedCustomObject({ ...ref, name: 'w' })) as Obj;
    expect(got.status).toEqual({ phase: 'Done' });
    expect(got.spec).toMatchObject({ size: 2, mode: 'normal' });
    const all = (await custom.listNamespacedCustomObject(ref)) as Obj;
    expect(all.items?.map((i) => i.metadata.name)).toEqual(['w']);
    const err = (await custom.createNamespacedCustomObject({ ...ref, body: JSON.parse(widget('x', { colour: 'blue' })) as object }).catch((e: unknown) => e)) as ApiException<string>;
    expect(err.code).toBe(422);
    expect(JSON.parse(err.body)).toMatchObject({ reason: 'Invalid', message: 'Widget.example.com "x" is invalid: spec.size: Required value' });
  });

  it('Watch: ADDED then MODIFIED, and a resume from a resourceVersion', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const seen: string[] = [];
    let rv = '';
    const done = new Promise<void>((resolve, reject) => {
      void new Watch(kc)
        .watch(
          `/api/v1/namespaces/${ns}/configmaps`,
          { fieldSelector: 'metadata.name=watched' },
          (type, obj: { metadata: { resourceVersion: string } }) => {
            seen.push(type);
            if (type === 'ADDED') rv = obj.metadata.resourceVersion;
            if (type === 'MODIFIED') resolve();
          },
          (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : undefined),
        )
        .then((req) => done.finally(() => req.abort()));
    });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'watched' } } });
    await core.patchNamespacedConfigMap({ namespace: ns, name: 'watched', body: { data: { x: 'y' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await eventually('the MODIFIED event', () => done.then(() => true), 10_000);
    expect(seen).toEqual(['ADDED', 'MODIFIED']);

    // resuming from the ADDED event's resourceVersion replays only the later change
    const replay: string[] = [];
    await new Promise<void>((resolve, reject) => {
      void new Watch(kc)
        .watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: rv, fieldSelector: 'metadata.name=watched', timeoutSeconds: 1 }, (type) => replay.push(type), (err: unknown) =>
          err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
        );
    });
    expect(replay).toEqual(['MODIFIED']);
  });

  it('informer: list then watch sees add, update and delete of custom resources', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const ref = { group: 'example.com', version: 'v1', namespace: ns, plural: 'widgets' };
    const path = `/apis/example.com/v1/namespaces/${ns}/widgets`;
    const informer = makeInformer(kc, path, () => custom.listNamespacedCustomObject(ref) as never);
    const events: string[] = [];
    informer.on('add', (o) => events.push(`add ${o.metadata?.name ?? ''}`));
    informer.on('update', (o) => events.push(`update ${o.metadata?.name ?? ''}`));
    informer.on('delete', (o) => events.push(`delete ${o.metadata?.name ?? ''}`));
    await informer.start();
    try {
      await eventually('the existing widget', () => (events.includes('add w') ? true : undefined));
      await custom.createNamespacedCustomObject({ ...ref, body: JSON.parse(widget('inf', { size: 1, pattern: 'p' })) as object });
      await custom.patchNamespacedCustomObject({ ...ref, name: 'inf', body: { spec: { size: 2 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      await custom.deleteNamespacedCustomObject({ ...ref, name: 'inf' });
      await eventually('delete inf', () => (events.includes('delete inf') ? true : undefined));
      expect(events).toEqual(['add w', 'add inf', 'update inf', 'delete inf']);
    } finally {
      await informer.stop();
    }
  });

  it('Exec: stdout, stderr, exit status, and stdin closed over v5', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'pg' }, spec: { containers: [{ name: 'postgres', image: 'postgres:16', env: [{ name: 'PGUSER', value: 'che' }] }] } } });
    await eventually('pod pg to run', async () => ((await core.readNamespacedPod({ namespace: ns, name: 'pg' })).status?.phase === 'Running' ? true : undefined));

    const exec = async (command: string[], input?: string) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const sink = (into: Buffer[]) =>
        new Writable({
          write(chunk: Buffer, _e, cb) {
            into.push(chunk);
            cb();
          },
        });
      const stdin = input === undefined ? null : Readable.from([Buffer.from(input)]);
      const status = await new Promise<V1Status>((resolve, reject) => {
        new Exec(kc).exec(ns, 'pg', 'postgres', command, sink(out), sink(err), stdin, false, resolve).catch(reject);
      });
      return { status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
    };
    const ok = await exec(['sh', '-c', 'echo "user=$PGUSER"; echo warn >&2']);
    expect(ok).toMatchObject({ stdout: 'user=che\n', stderr: 'warn\n', status: { status: 'Success' } });
    const failed = await exec(['sh', '-c', 'exit 7']);
    expect(failed.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '7' }] } });
    const piped = await exec(['sh', '-c', 'wc -c'], 'x'.repeat(100_000));
    expect(piped.stdout.trim()).toBe('100000');
  });

  it('AppsV1Api: a deployment becomes available with a running pod and scales to zero', async () => {
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'che' },
        spec: { selector: { matchLabels: { app: 'che' } }, template: { metadata: { labels: { app: 'che' } }, spec: { containers: [{ name: 'che', image: 'quay.io/eclipse/che-server' }] } } },
      },
    });
    const d = await eventually('deployment che to be available', async () => {
      const dep = await apps.readNamespacedDeployment({ namespace: ns, name: 'che' });
      return dep.status?.availableReplicas === 1 ? dep : undefined;
    });
    expect(d.status?.conditions?.find((c) => c.type === 'Available')?.status).toBe('True');
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=che' });
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0].metadata?.labels?.['pod-template-hash']).toMatch(/^[a-z0-9]+$/);
    await apps.patchNamespacedDeployment({ namespace: ns, name: 'che', body: { spec: { replicas: 0 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await eventually('pods of che to go away', async () => ((await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=che' })).items.length === 0 ? true : undefined));
  });
});

describe('kubesim API semantics', () => {
  let server: ApiServer;
  const get = async (path: string, init?: RequestInit) => {
    const r = await fetch(server.url + path, init);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    const handler: ExecHandler = async (pod, container, command, io) => {
      io.stdout.write(`${pod.metadata.name ?? ''}/${container}: ${command.join(' ')}\n`);
      return 0;
    };
    server = await startApiServer({ execHandler: handler });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('paginates lists with limit and continue', async () => {
    for (let i = 0; i < 5; i++) server.store.create('v1', 'configmaps', { metadata: { name: `page-${i}` } });
    const first = await get('/api/v1/namespaces/default/configmaps?limit=2');
    const meta = first.body.metadata as { continue: string; remainingItemCount: number };
    expect((first.body.items as Obj[]).map((i) => i.metadata.name)).toEqual(['page-0', 'page-1']);
    expect(meta.remainingItemCount).toBe(3);
    const next = await get(`/api/v1/namespaces/default/configmaps?limit=10&continue=${meta.continue}`);
    expect((next.body.items as Obj[]).map((i) => i.metadata.name)).toEqual(['page-2', 'page-3', 'page-4']);
  });

  it('merges containers by name in strategic merge patches and deletes with $patch', async () => {
    server.store.create('v1', 'pods', { metadata: { name: 'two' }, spec: { containers: [{ name: 'a', image: 'x:1' }, { name: 'b', image: 'y:1' }] } });
    const r = await get('/api/v1/namespaces/default/pods/two', {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
      body: JSON.stringify({ spec: { containers: [{ name: 'b', image: 'y:2' }] } }),
    });
    expect(r.status).toBe(200);
    const cs = (r.body.spec as { containers: { name: string; image: string }[] }).containers;
    expect(cs.map((c) => `${c.name}=${c.image}`)).toEqual(['a=x:1', 'b=y:2']);
    const forbidden = await get('/api/v1/namespaces/default/pods/two', {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
      body: JSON.stringify({ spec: { containers: [{ name: 'b', $patch: 'delete' }] } }),
    });
    expect(forbidden.status).toBe(422);
    expect(forbidden.body.message).toContain('pod updates may not change fields');
  });

  it('answers a too old resourceVersion with an in-stream 410 Expired', async () => {
    const small = await startApiServer({ watchHistory: 3 });
    try {
      const first = small.store.create('v1', 'configmaps', { metadata: { name: 'c' } });
      for (let i = 0; i < 5; i++) small.store.patch('v1', 'configmaps', 'default', 'c', { data: { i: String(i) } });
      const r = await fetch(`${small.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${first.metadata.resourceVersion ?? ''}`);
      expect(r.status).toBe(200);
      // the server ends the stream right after the error event
      expect(JSON.parse((await r.text()).trim())).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
      const recent = await fetch(`${small.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${small.store.resourceVersion}&timeoutSeconds=1`);
      expect(await recent.text()).toBe('');
    } finally {
      await small.close();
    }
  });

  it('finalizers keep an object until they are removed; uid preconditions are checked', async () => {
    const cm = server.store.create('v1', 'configmaps', { metadata: { name: 'final', finalizers: ['x/y'] } });
    const wrong = await get('/api/v1/namespaces/default/configmaps/final', { method: 'DELETE', body: JSON.stringify({ preconditions: { uid: 'nope' } }), headers: { 'Content-Type': 'application/json' } });
    expect(wrong.status).toBe(409);
    const del = await get('/api/v1/namespaces/default/configmaps/final', { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect((del.body.metadata as Obj['metadata']).deletionTimestamp).toBeTruthy();
    expect(server.store.get('v1', 'configmaps', 'default', 'final').metadata.uid).toBe(cm.metadata.uid);
    const added = await get('/api/v1/namespaces/default/configmaps/final', {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/merge-patch+json' },
      body: JSON.stringify({ metadata: { finalizers: ['x/y', 'x/z'] } }),
    });
    expect(added.status).toBe(422);
    server.store.patch('v1', 'configmaps', 'default', 'final', { metadata: { finalizers: null } });
    expect(() => server.store.get('v1', 'configmaps', 'default', 'final')).toThrow('configmaps "final" not found');
  });

  it('hands exec sessions to a custom handler', async () => {
    server.store.create('v1', 'pods', { metadata: { name: 'custom' }, spec: { containers: [{ name: 'c1', image: 'x' }] } });
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig);
    await eventually('pod custom to run', () => (server.store.get('v1', 'pods', 'default', 'custom').status as { phase?: string } | undefined)?.phase === 'Running' || undefined);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(kc).exec('default', 'custom', 'c1', ['pg_dump', '-Fc'], out, null, null, false, resolve).catch(reject);
    });
    expect(status.status).toBe('Success');
    await eventually('stdout to end', () => (out.writableEnded ? true : undefined));
    expect(Buffer.concat(chunks).toString()).toBe('custom/c1: pg_dump -Fc\n');
  });
});
