// kubectl 1.32 sends built-in objects of its typed `create` commands (`create namespace`,
// `create secret`, `create configmap`, `create deployment`, …) as Kubernetes protobuf: the bytes
// `k8s\0` then a runtime.Unknown {typeMeta, raw} whose raw is the object's message. This decodes
// the messages those commands produce into the JSON the rest of the server works with. Field
// numbers come from k8s.io/api's generated.proto; unknown fields are rejected unless they hold
// their zero value.
import { KubeApiError } from './errors.js';
import type { Json, JsonObject } from './types.js';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Scalar = 's' | 'b' | 'i' | 'o';

interface Field {
  name: string;
  /** s string, b bytes, i varint integer, o bool, or a message name. */
  type: string;
  repeated: boolean;
  /** Value type of a map<string, …>. */
  mapValue?: string;
  /** Pointer fields in Go: a zero value on the wire is meaningful and kept. */
  keepZero: boolean;
  /** Embedded struct: its fields appear inline in JSON. */
  inline: boolean;
}

// `num:name:type` with type suffixes: [] repeated, ! keep zero values, ^ inline; {T} is map<string,T>.
const SCHEMA: Record<string, string> = {
  Unknown: '1:typeMeta:TypeMeta 2:raw:b 3:contentEncoding:s 4:contentType:s',
  TypeMeta: '1:apiVersion:s 2:kind:s',
  ObjectMeta:
    '1:name:s 2:generateName:s 3:namespace:s 4:selfLink:s 5:uid:s 6:resourceVersion:s 7:generation:i 8:creationTimestamp:Time 9:deletionTimestamp:Time 10:deletionGracePeriodSeconds:i! 11:labels:{s} 12:annotations:{s} 13:ownerReferences:OwnerReference[] 14:finalizers:s[]',
  OwnerReference: '5:apiVersion:s 1:kind:s 3:name:s 4:uid:s 6:controller:o! 7:blockOwnerDeletion:o!',
  Time: '1:seconds:i 2:nanos:i',
  Namespace: '1:metadata:ObjectMeta 2:spec:NamespaceSpec 3:status:NamespaceStatus',
  NamespaceSpec: '1:finalizers:s[]',
  NamespaceStatus: '1:phase:s',
  Secret: '1:metadata:ObjectMeta 5:immutable:o! 2:data:{b} 4:stringData:{s} 3:type:s',
  ConfigMap: '1:metadata:ObjectMeta 4:immutable:o! 2:data:{s} 3:binaryData:{b}',
  ServiceAccount: '1:metadata:ObjectMeta 2:secrets:ObjectReference[] 3:imagePullSecrets:LocalObjectReference[] 4:automountServiceAccountToken:o!',
  ObjectReference: '1:kind:s 2:namespace:s 3:name:s 4:uid:s 5:apiVersion:s 6:resourceVersion:s 7:fieldPath:s',
  LocalObjectReference: '1:name:s',
  Service: '1:metadata:ObjectMeta 2:spec:ServiceSpec 3:status:ServiceStatus',
  ServiceSpec:
    '1:ports:ServicePort[] 2:selector:{s} 3:clusterIP:s 18:clusterIPs:s[] 4:type:s 5:externalIPs:s[] 7:sessionAffinity:s 10:externalName:s 11:externalTrafficPolicy:s 17:ipFamilyPolicy:s! 19:ipFamilies:s[] 22:internalTrafficPolicy:s!',
  ServicePort: '1:name:s 2:protocol:s 6:appProtocol:s! 3:port:i 4:targetPort:IntOrString 5:nodePort:i',
  ServiceStatus: '1:loadBalancer:LoadBalancerStatus',
  LoadBalancerStatus: '',
  IntOrString: '1:type:i 2:intVal:i 3:strVal:s',
  Quantity: '1:string:s',
  Deployment: '1:metadata:ObjectMeta 2:spec:DeploymentSpec 3:status:DeploymentStatus',
  DeploymentSpec: '1:replicas:i! 2:selector:LabelSelector 3:template:PodTemplateSpec 4:strategy:DeploymentStrategy 5:minReadySeconds:i 6:revisionHistoryLimit:i! 7:paused:o 9:progressDeadlineSeconds:i!',
  DeploymentStatus: '',
  DeploymentStrategy: '1:type:s 2:rollingUpdate:RollingUpdateDeployment',
  RollingUpdateDeployment: '1:maxUnavailable:IntOrString 2:maxSurge:IntOrString',
  LabelSelector: '1:matchLabels:{s} 2:matchExpressions:LabelSelectorRequirement[]',
  LabelSelectorRequirement: '1:key:s 2:operator:s 3:values:s[]',
  PodTemplateSpec: '1:metadata:ObjectMeta 2:spec:PodSpec',
  PodSpec:
    '20:initContainers:Container[] 2:containers:Container[] 3:restartPolicy:s 4:terminationGracePeriodSeconds:i! 5:activeDeadlineSeconds:i! 6:dnsPolicy:s 7:nodeSelector:{s} 8:serviceAccountName:s 9:serviceAccount:s 21:automountServiceAccountToken:o! 10:nodeName:s 11:hostNetwork:o 15:imagePullSecrets:LocalObjectReference[] 16:hostname:s 17:subdomain:s 19:schedulerName:s 24:priorityClassName:s 25:priority:i! 30:enableServiceLinks:o! 31:preemptionPolicy:s!',
  Container:
    '1:name:s 2:image:s 3:command:s[] 4:args:s[] 5:workingDir:s 6:ports:ContainerPort[] 7:env:EnvVar[] 8:resources:ResourceRequirements 9:volumeMounts:VolumeMount[] 13:terminationMessagePath:s 20:terminationMessagePolicy:s 14:imagePullPolicy:s 16:stdin:o 17:stdinOnce:o 18:tty:o',
  ContainerPort: '1:name:s 2:hostPort:i 3:containerPort:i 4:protocol:s 5:hostIP:s',
  EnvVar: '1:name:s 2:value:s 3:valueFrom:EnvVarSource',
  EnvVarSource: '1:fieldRef:ObjectFieldSelector 3:configMapKeyRef:ConfigMapKeySelector 4:secretKeyRef:SecretKeySelector',
  ObjectFieldSelector: '1:apiVersion:s 2:fieldPath:s',
  ConfigMapKeySelector: '1:localObjectReference:LocalObjectReference^ 2:key:s 3:optional:o!',
  SecretKeySelector: '1:localObjectReference:LocalObjectReference^ 2:key:s 3:optional:o!',
  ResourceRequirements: '1:limits:{Quantity} 2:requests:{Quantity}',
  VolumeMount: '1:name:s 2:readOnly:o 3:mountPath:s 4:subPath:s 5:mountPropagation:s! 6:subPathExpr:s',
};

/** Kinds whose protobuf form we decode, by apiVersion/kind. */
const KINDS: Record<string, string> = {
  'v1/Namespace': 'Namespace',
  'v1/Secret': 'Secret',
  'v1/ConfigMap': 'ConfigMap',
  'v1/ServiceAccount': 'ServiceAccount',
  'v1/Service': 'Service',
  'apps/v1/Deployment': 'Deployment',
};

const parsed = new Map<string, Map<number, Field>>();

function fieldsOf(message: string): Map<number, Field> {
  let m = parsed.get(message);
  if (m) return m;
  m = new Map();
  for (const spec of (SCHEMA[message] ?? '').split(' ').filter(Boolean)) {
    const [num, name, rawType] = spec.split(':');
    let type = rawType;
    const keepZero = type.endsWith('!') || type.endsWith('!^');
    const inline = type.endsWith('^');
    type = type.replace(/[!^]+$/, '');
    const repeated = type.endsWith('[]');
    type = type.replace(/\[\]$/, '');
    const map = /^\{(\w+)\}$/.exec(type);
    m.set(Number(num), { name, type: map ? 'map' : type, repeated, mapValue: map?.[1], keepZero, inline });
  }
  parsed.set(message, m);
  return m;
}

function unsupported(detail: string): KubeApiError {
  return new KubeApiError(
    'UnsupportedMediaType',
    `kubesim cannot decode this protobuf body (${detail}); it decodes ${Object.keys(KINDS).join(', ')} and otherwise accepts application/json`,
  );
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw unsupported('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw unsupported('varint too long');
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw unsupported('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw unsupported(`wire type ${wire}`);
  }
}

/** int32/int64 fields are plain varints holding the two's complement value. */
function toInt(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function scalar(type: Scalar, r: Reader, wire: number): Json {
  switch (type) {
    case 's':
      return r.bytes().toString('utf8');
    case 'b':
      return r.bytes().toString('base64');
    case 'i':
      if (wire !== 0) throw unsupported('integer with non-varint encoding');
      return toInt(r.varint());
    case 'o':
      return r.varint() !== 0n;
  }
}

function isZero(v: Json): boolean {
  if (v === '' || v === 0 || v === false || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v).length === 0;
}

function decodeValue(type: string, r: Reader, wire: number): Json {
  if (type === 's' || type === 'b' || type === 'i' || type === 'o') return scalar(type, r, wire);
  if (wire !== 2) throw unsupported(`message ${type} with wire type ${wire}`);
  return decodeMessage(type, r.bytes());
}

function decodeMessage(message: string, buf: Buffer): Json {
  if (!(message in SCHEMA)) throw unsupported(`message ${message}`);
  const fields = fieldsOf(message);
  const r = new Reader(buf);
  const out: JsonObject = {};
  const present = new Set<string>();
  while (!r.done) {
    const tag = r.varint();
    const num = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    const f = fields.get(num);
    if (!f) {
      // Go's non-pointer fields are always on the wire; their zero value means "unset".
      const start = r.pos;
      r.skip(wire);
      const v = r.buf.subarray(start, r.pos);
      if ((wire === 0 && v.length === 1 && v[0] === 0) || (wire === 2 && v.length === 1 && v[0] === 0)) continue;
      throw unsupported(`field ${num} of ${message}`);
    }
    present.add(f.name);
    if (f.type === 'map') {
      const entry = new Reader(r.bytes());
      let k = '';
      let v: Json = f.mapValue === 's' || f.mapValue === 'b' ? '' : {};
      while (!entry.done) {
        const t = entry.varint();
        if (Number(t >> 3n) === 1) k = entry.bytes().toString('utf8');
        else if (Number(t >> 3n) === 2) v = decodeValue(f.mapValue ?? 's', entry, Number(t & 7n));
        else entry.skip(Number(t & 7n));
      }
      const m = (out[f.name] ?? {}) as JsonObject;
      m[k] = v;
      out[f.name] = m;
    } else if (f.repeated) {
      const list = (out[f.name] ?? []) as Json[];
      list.push(decodeValue(f.type, r, wire));
      out[f.name] = list;
    } else {
      out[f.name] = decodeValue(f.type, r, wire);
    }
  }
  for (const f of fields.values()) {
    if (!present.has(f.name)) continue;
    if (f.inline && typeof out[f.name] === 'object' && out[f.name] !== null) {
      Object.assign(out, out[f.name]);
      delete out[f.name];
    } else if (!f.keepZero && isZero(out[f.name])) {
      delete out[f.name];
    }
  }
  return special(message, out);
}

/** Messages whose JSON form is not an object. */
function special(message: string, o: JsonObject): Json {
  switch (message) {
    case 'Time':
      // Go's zero time travels as an empty message and is `null` in JSON.
      if (!o.seconds && !o.nanos) return null;
      return new Date(Number(o.seconds ?? 0) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    case 'IntOrString':
      return Number(o.type ?? 0) === 1 ? String(o.strVal ?? '') : Number(o.intVal ?? 0);
    case 'Quantity':
      return String(o.string ?? '');
    default:
      return o;
  }
}

export function isProtobuf(contentType: string): boolean {
  return contentType.split(';')[0].trim() === 'application/vnd.kubernetes.protobuf';
}

/** Decodes a `k8s\0`-prefixed protobuf request body into the object's JSON form. */
export function decodeProtobuf(body: Buffer): JsonObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw unsupported('missing k8s\\0 prefix');
  const unknown = decodeMessage('Unknown', body.subarray(4)) as JsonObject;
  const tm = (unknown.typeMeta ?? {}) as JsonObject;
  const apiVersion = String(tm.apiVersion ?? '');
  const kind = String(tm.kind ?? '');
  const message = KINDS[`${apiVersion}/${kind}`];
  if (!message) throw unsupported(`kind ${apiVersion}/${kind}`);
  if (unknown.contentEncoding) throw unsupported(`content encoding ${String(unknown.contentEncoding)}`);
  const raw = Buffer.from(String(unknown.raw ?? ''), 'base64');
  const obj = decodeMessage(message, raw) as JsonObject;
  return { apiVersion, kind, ...obj };
}
