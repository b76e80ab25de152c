import { UsageError } from '../errors.js';
import { instantiate, type WasmMemory } from '../wasm/instantiate.js';
import { POLY1305_WASM } from '../wasm/poly1305.wasm.js';

/** Exports of src/wasm/poly1305.c. */
interface Poly1305Exports {
  memory: WasmMemory;
  key_ptr(): number;
  in_ptr(): number;
  in_size(): number;
  init(): void;
  blocks(len: number): void;
  finish(len: number): void;
}

export type Poly1305 = (msg: Uint8Array, key: Uint8Array) => Uint8Array;

function wasmPoly1305(k: Poly1305Exports): Poly1305 {
  const mem = new Uint8Array(k.memory.buffer);
  const keyAt = k.key_ptr();
  const inAt = k.in_ptr();
  // A multiple of 16 so every chunk but the last holds whole blocks; small enough to stay in cache.
  const inSize = k.in_size();
  return (msg, key) => {
    if (key.length !== 32) throw new UsageError(`poly1305 key must be 32 bytes, got ${key.length}`);
    mem.set(key, keyAt);
    k.init();
    const full = msg.length - (msg.length % 16);
    for (let off = 0; off < full; off += inSize) {
      const end = Math.min(full, off + inSize);
      mem.set(msg.subarray(off, end), inAt);
      k.blocks(end - off);
    }
    mem.set(msg.subarray(full), inAt);
    k.finish(msg.length - full);
    return mem.slice(keyAt, keyAt + 16);
  };
}

const wasmExports = instantiate<Poly1305Exports>(POLY1305_WASM);

/**
 * Poly1305 (RFC 8439) in WebAssembly, same call shape as @noble/ciphers' `poly1305(msg, key)`: the
 * 16-byte tag of `msg` under the one-time key r ‖ s (r is clamped here). Null without WebAssembly.
 */
export const poly1305Wasm: Poly1305 | null = wasmExports ? wasmPoly1305(wasmExports) : null;

/** The WebAssembly kernel, or @noble's where the runtime has no WebAssembly (imported only then). */
export async function defaultPoly1305(): Promise<Poly1305> {
  return poly1305Wasm ?? (await import('@noble/ciphers/_poly1305.js')).poly1305;
}
