// kubesim: an in-process Kubernetes API server for tests and the demo (see server.ts).
export { startApiServer, type ApiServer, type ApiServerOptions } from './server.js';
export { hostExec, containerEnv, type ExecHandler, type ExecIO } from './exec.js';
export { Store, type StoreEvent, type PatchType, type ListOptions, type WriteOptions, type DeleteOptions } from './store.js';
export { KubeApiError, type StatusReason, type StatusCause, type StatusDetails } from './errors.js';
export type { KubeObject, ObjectMeta, OwnerReference, Json, JsonObject } from './types.js';
