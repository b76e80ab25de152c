import { fromBase64 } from '../crypto/encoding.js';

/** The little of the WebAssembly JS API we use; tsconfig has no DOM lib, which is where its types live. */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

/** A kernel's linear memory; the kernels never grow it, so views on its buffer stay valid. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

/** Node's native base64 decoder where there is one: the kernels are a few KiB, decoded at every start. */
const NodeBuffer = (globalThis as { Buffer?: { from(s: string, encoding: 'base64'): Uint8Array } }).Buffer;
const decode = (base64: string): Uint8Array => (NodeBuffer ? NodeBuffer.from(base64, 'base64') : fromBase64(base64));

/**
 * Synchronously instantiates a kernel module (no imports) from its base64 bytes. Null where the
 * runtime has no WebAssembly or refuses to compile it (e.g. a Content-Security-Policy): callers then
 * use their TypeScript code path.
 */
export function instantiate<T>(base64: string): T | null {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) return null;
  try {
    return new api.Instance(new api.Module(decode(base64)), {}).exports as T;
  } catch {
    return null;
  }
}
