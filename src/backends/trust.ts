import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { UsageError } from '../errors.js';

/**
 * Node 20 parses the NODE_EXTRA_CA_CERTS bundle, and with it all its own roots, before any script runs
 * (~0.09 s of every CLI start on this kind of machine). The `restic-ts` command (bin/restic-ts.js)
 * therefore starts Node without it and the CLI calls this; from then on every TLS client of ours adds
 * the bundle itself, so it is parsed only by a command that makes a TLS connection.
 */
let extraCaCertsDeferred = false;

export function deferExtraCaCerts(): void {
  extraCaCertsDeferred = true;
}

/** True when Node's default trust lacks the NODE_EXTRA_CA_CERTS bundle and clients must add it. */
export function extraCaCertsAreDeferred(): boolean {
  return extraCaCertsDeferred && !!process.env.NODE_EXTRA_CA_CERTS;
}

/** Node's roots plus the NODE_EXTRA_CA_CERTS bundle, as PEM texts: what Node trusts by default. */
export function defaultTrustedCAs(): string[] {
  const ca = [...rootCertificates];
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (extra) {
    try {
      ca.push(readFileSync(extra, 'utf8'));
    } catch (err) {
      // Node itself warns and goes on without the bundle; do the same when it is ours to load.
      if (extraCaCertsDeferred) process.emitWarning(`Ignoring extra certs from \`${extra}\`, load failed: ${(err as Error).message}`);
    }
  }
  return ca;
}

/** The PEM texts of `--cacert` files; an unreadable one is a UsageError whether or not TLS is used. */
export function readCaCertificates(files: readonly string[] = []): string[] {
  return files.map((file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read CA certificate ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
}

/**
 * The context for a TLS client that trusts Node's defaults plus `given` (PEM texts), parsed once (a
 * `ca` option instead would parse every certificate again for each connection). Undefined when
 * Node's own default context already trusts exactly that.
 */
export function trustContext(given: readonly string[]): SecureContext | undefined {
  if (given.length === 0 && !extraCaCertsAreDeferred()) return undefined;
  // A `ca` list replaces Node's defaults, so they are listed too.
  return createSecureContext({ ca: [...defaultTrustedCAs(), ...given] });
}
