// The controllers a bare cluster runs that tests can observe: CRD establishment and cleanup,
// namespace termination and default ServiceAccounts, Deployment → Pods, a "kubelet" that marks
// pods Running, PVC binding.
// They are level-triggered: each event makes them look at the current state and fix it up.
import { createHash, randomBytes } from 'node:crypto';
import { KubeApiError } from './errors.js';
import { typeFromCrd, type ResourceType } from './resources.js';
import { fromLabelSelectorObject, matchesLabels } from './selectors.js';
import { randomSuffix, type Store, type StoreEvent } from './store.js';
import { clone, isObject, jsonEqual, nowTimestamp, type Json, type JsonObject, type KubeObject } from './types.js';

const CRD_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';
const HASH_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/** Stable pod-template-hash label value for a pod template. */
export function templateHash(template: unknown): string {
  const digest = createHash('sha256').update(canonical(template)).digest();
  let s = '';
  for (let i = 0; i < 10; i++) s += HASH_ALPHABET[digest[i] % HASH_ALPHABET.length];
  return s;
}

/** Keeps a condition's timestamps when its status did not change, so reconciling is idempotent. */
function condition(prev: Json | undefined, type: string, status: string, reason: string, message: string, withUpdateTime: boolean): JsonObject {
  const old = Array.isArray(prev) ? prev.find((c) => isObject(c) && c.type === type) : undefined;
  const now = nowTimestamp();
  const same = isObject(old) && old.status === status && old.reason === reason && old.message === message;
  const c: JsonObject = { type, status, reason, message, lastTransitionTime: isObject(old) && old.status === status ? (old.lastTransitionTime ?? now) : now };
  if (withUpdateTime) c.lastUpdateTime = same ? (old.lastUpdateTime ?? now) : now;
  return c;
}

export class Controllers {
  private readonly unsubscribe: () => void;
  private podIp = 10;

  constructor(private readonly store: Store) {
    this.unsubscribe = store.onEvent((e) => this.handle(e));
    // Namespaces that existed before the controllers started (the built-in ones).
    for (const ns of store.listT(this.type('', 'namespaces'), 'v1', undefined).items) this.namespace(ns.metadata.name ?? '');
  }

  stop(): void {
    this.unsubscribe();
  }

  private type(group: string, plural: string): ResourceType {
    const rt = this.store.registry.byPlural(group, plural);
    if (!rt) throw new Error(`built-in type ${group}/${plural} missing`);
    return rt;
  }

  private handle(e: StoreEvent): void {
    try {
      const { group, plural } = e.rt;
      const meta = e.object.metadata;
      if (group === 'apiextensions.k8s.io' && plural === 'customresourcedefinitions') this.crd(meta.name ?? '', e);
      else if (group === '' && plural === 'namespaces') this.namespace(meta.name ?? '');
      else if (group === 'apps' && plural === 'deployments') this.deployment(meta.namespace ?? '', meta.name ?? '');
      else if (group === '' && plural === 'pods') this.pod(e);
      else if (group === '' && plural === 'persistentvolumeclaims') this.pvc(meta.namespace ?? '', meta.name ?? '');
      if (e.type === 'DELETED' && e.rt.crd) this.crd(e.rt.crd, undefined);
      if (e.type === 'DELETED' && meta.namespace) this.namespace(meta.namespace);
    } catch (err) {
      // Objects change under a controller (deleted, updated meanwhile); the next event retries.
      if (!(err instanceof KubeApiError)) throw err;
    }
  }

  private crd(name: string, e: StoreEvent | undefined): void {
    const crdType = this.type('apiextensions.k8s.io', 'customresourcedefinitions');
    const crd = this.store.peek(crdType, undefined, name);
    if (!crd) {
      if (e?.type === 'DELETED') {
        const rt = typeFromCrd(e.object);
        const live = rt && this.store.registry.byPlural(rt.group, rt.plural);
        if (live && live.crd === name) this.store.dropType(live);
      }
      return;
    }
    const rt = typeFromCrd(crd);
    if (!rt) return;
    if (crd.metadata.deletionTimestamp) {
      const live = this.store.registry.byPlural(rt.group, rt.plural);
      const remaining = live ? this.store.objectsOfType(live) : [];
      for (const o of remaining) {
        if (!o.metadata.deletionTimestamp && live) this.store.deleteT(live, live.versions[0].name, o.metadata.namespace, o.metadata.name ?? '');
      }
      if (live && this.store.objectsOfType(live).length > 0) return;
      const finalizers = (crd.metadata.finalizers ?? []).filter((f) => f !== CRD_FINALIZER);
      this.store.patchT(crdType, 'v1', undefined, name, 'merge', { metadata: { finalizers } });
      return;
    }
    const existing = this.store.registry.byPlural(rt.group, rt.plural);
    const taken = existing !== undefined && existing.crd !== name;
    if (!taken) this.store.registry.add(rt);
    const prevStatus = isObject(crd.status) ? crd.status : {};
    const spec = crd.spec as JsonObject;
    const storage = rt.versions[0].name;
    const stored = Array.isArray(prevStatus.storedVersions) ? prevStatus.storedVersions.map(String) : [];
    const status: JsonObject = {
      conditions: [
        condition(prevStatus.conditions, 'NamesAccepted', taken ? 'False' : 'True', taken ? 'NameConflict' : 'NoConflicts', taken ? `"${rt.plural}" is already in use` : 'no conflicts found', false),
        condition(prevStatus.conditions, 'Established', taken ? 'False' : 'True', taken ? 'NotAccepted' : 'InitialNamesAccepted', taken ? 'not all names are accepted' : 'the initial names have been accepted', false),
      ],
      acceptedNames: taken ? (prevStatus.acceptedNames ?? {}) : clone(spec.names ?? {}),
      storedVersions: stored.includes(storage) ? stored : [...stored, storage],
    };
    if (!jsonEqual(status, prevStatus)) this.store.updateT(crdType, 'v1', undefined, name, { metadata: {}, status }, { subresource: 'status' });
  }

  private namespace(name: string): void {
    const nsType = this.type('', 'namespaces');
    const ns = this.store.peek(nsType, undefined, name);
    if (!ns) return;
    if (!ns.metadata.deletionTimestamp) {
      // Like the service account controller: every namespace gets a `default` ServiceAccount.
      const saType = this.type('', 'serviceaccounts');
      if (!this.store.peek(saType, name, 'default')) this.store.createT(saType, 'v1', name, { metadata: { name: 'default' } });
      return;
    }
    const content = this.store.objectsInNamespace(name);
    for (const { rt, object } of content) {
      if (!object.metadata.deletionTimestamp && this.store.peek(rt, name, object.metadata.name ?? '')) {
        this.store.deleteT(rt, rt.versions[0].name, name, object.metadata.name ?? '');
      }
    }
    if (this.store.objectsInNamespace(name).length > 0) return;
    const spec = isObject(ns.spec) ? ns.spec : {};
    if (Array.isArray(spec.finalizers) && spec.finalizers.includes('kubernetes')) {
      const next = clone(ns);
      next.spec = { ...spec, finalizers: spec.finalizers.filter((f) => f !== 'kubernetes') };
      this.store.updateT(nsType, 'v1', undefined, name, next);
    }
  }

  private ownerDeployment(pod: KubeObject): { namespace: string; name: string } | undefined {
    const ref = (pod.metadata.ownerReferences ?? []).find((r) => r.controller && r.kind === 'Deployment');
    return ref && pod.metadata.namespace ? { namespace: pod.metadata.namespace, name: ref.name } : undefined;
  }

  private pod(e: StoreEvent): void {
    const owner = this.ownerDeployment(e.object);
    if (e.type !== 'DELETED') this.kubelet(e.object.metadata.namespace ?? '', e.object.metadata.name ?? '');
    if (owner) this.deployment(owner.namespace, owner.name);
  }

  /** Containers "start" at once: the pod goes Running and Ready. */
  private kubelet(ns: string, name: string): void {
    const podType = this.type('', 'pods');
    const pod = this.store.peek(podType, ns, name);
    if (!pod || pod.metadata.deletionTimestamp) return;
    const status = isObject(pod.status) ? pod.status : {};
    if (status.phase !== 'Pending') return;
    const now = nowTimestamp();
    const spec = isObject(pod.spec) ? pod.spec : {};
    const containers = Array.isArray(spec.containers) ? spec.containers.filter(isObject) : [];
    const ip = `10.244.0.${this.podIp++ % 250}`;
    const cond = (type: string) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: now });
    const next: JsonObject = {
      phase: 'Running',
      conditions: [cond('PodReadyToStartContainers'), cond('Initialized'), cond('Ready'), cond('ContainersReady'), cond('PodScheduled')],
      hostIP: '10.0.0.1',
      hostIPs: [{ ip: '10.0.0.1' }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: now,
      qosClass: status.qosClass ?? 'BestEffort',
      containerStatuses: containers.map((c) => ({
        name: c.name ?? '',
        state: { running: { startedAt: now } },
        lastState: {},
        ready: true,
        restartCount: 0,
        image: c.image ?? '',
        imageID: '',
        containerID: `containerd://${randomBytes(32).toString('hex')}`,
        started: true,
      })),
    };
    this.store.updateT(podType, 'v1', ns, name, { metadata: {}, status: next }, { subresource: 'status' });
  }

  private pvc(ns: string, name: string): void {
    const t = this.type('', 'persistentvolumeclaims');
    const pvc = this.store.peek(t, ns, name);
    if (!pvc || pvc.metadata.deletionTimestamp || !isObject(pvc.status) || pvc.status.phase !== 'Pending') return;
    const spec = isObject(pvc.spec) ? pvc.spec : {};
    const requests = isObject(spec.resources) && isObject(spec.resources.requests) ? spec.resources.requests : {};
    if (spec.volumeName === undefined) {
      this.store.patchT(t, 'v1', ns, name, 'merge', { spec: { volumeName: `pvc-${pvc.metadata.uid ?? ''}` } });
    }
    this.store.updateT(t, 'v1', ns, name, { metadata: {}, status: { phase: 'Bound', accessModes: spec.accessModes ?? [], capacity: { storage: requests.storage ?? '1Gi' } } }, { subresource: 'status' });
  }

  /** Keeps `spec.replicas` pods of the current template, then reports them in the status. */
  private deployment(ns: string, name: string): void {
    const depType = this.type('apps', 'deployments');
    const podType = this.type('', 'pods');
    const d = this.store.peek(depType, ns, name);
    if (!d || d.metadata.deletionTimestamp) return;
    const spec = isObject(d.spec) ? d.spec : {};
    const template = isObject(spec.template) ? spec.template : {};
    const tplMeta = isObject(template.metadata) ? template.metadata : {};
    const replicas = typeof spec.replicas === 'number' ? spec.replicas : 1;
    const hash = templateHash(template);
    const selector = fromLabelSelectorObject(spec.selector);
    const owned = () =>
      this.store
        .listT(podType, 'v1', ns)
        .items.filter((p) => (p.metadata.ownerReferences ?? []).some((r) => r.uid === d.metadata.uid) && matchesLabels(selector, p.metadata.labels) && !p.metadata.deletionTimestamp);
    let pods = owned();
    for (const p of pods) {
      if (p.metadata.labels?.['pod-template-hash'] !== hash) this.store.deleteT(podType, 'v1', ns, p.metadata.name ?? '');
    }
    pods = owned();
    for (const p of pods.slice(replicas)) this.store.deleteT(podType, 'v1', ns, p.metadata.name ?? '');
    for (let i = pods.length; i < replicas; i++) {
      this.store.createT(podType, 'v1', ns, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${name}-${hash}-${randomSuffix()}`,
          namespace: ns,
          labels: { ...(isObject(tplMeta.labels) ? (tplMeta.labels as Record<string, string>) : {}), 'pod-template-hash': hash },
          annotations: isObject(tplMeta.annotations) ? (clone(tplMeta.annotations) as Record<string, string>) : undefined,
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: d.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }],
        },
        spec: clone(template.spec ?? {}),
      });
    }
    pods = owned();
    const ready = pods.filter((p) => isObject(p.status) && p.status.phase === 'Running').length;
    const prev = isObject(d.status) ? d.status : {};
    const status: JsonObject = { observedGeneration: d.metadata.generation ?? 1 };
    if (pods.length) status.replicas = pods.length;
    if (pods.length) status.updatedReplicas = pods.length;
    if (ready) status.readyReplicas = ready;
    if (ready) status.availableReplicas = ready;
    if (replicas - ready > 0) status.unavailableReplicas = replicas - ready;
    const available = ready >= replicas;
    status.conditions = [
      condition(
        prev.conditions,
        'Available',
        available ? 'True' : 'False',
        available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
        available ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.',
        true,
      ),
      condition(prev.conditions, 'Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${name}-${hash}" has successfully progressed.`, true),
    ];
    if (!jsonEqual(status, prev)) this.store.updateT(depType, 'v1', ns, name, { metadata: {}, status }, { subresource: 'status' });
  }
}
