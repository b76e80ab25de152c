import { randomBytes } from 'node:crypto';
import { IntegrityError, ResticError } from '../errors.js';

/** A polynomial over GF(2): bit i is the coefficient of x^i. */
export type Polynomial = bigint;

/** restic's chunker works with degree-53 polynomials so that digest << 8 fits in 61 bits. */
export const POLYNOMIAL_DEGREE = 53;

/** Degree of `p`, -1 for the zero polynomial. */
export function degree(p: Polynomial): number {
  return p <= 0n ? -1 : p.toString(2).length - 1;
}

/** Remainder of `x` divided by `d` (d ≠ 0). */
function polyMod(x: Polynomial, d: Polynomial): Polynomial {
  const dd = degree(d);
  if (dd < 0) throw new RangeError('polynomial division by zero');
  for (let dx = degree(x); dx >= dd; dx = degree(x)) x ^= d << BigInt(dx - dd);
  return x;
}

/** `a * b mod m` without building the double-width product (m of degree ≥ 1). */
function mulMod(a: Polynomial, b: Polynomial, m: Polynomial): Polynomial {
  const top = 1n << BigInt(degree(m));
  a = polyMod(a, m);
  let res = 0n;
  while (b > 0n) {
    if (b & 1n) res ^= a;
    b >>= 1n;
    a <<= 1n;
    if (a & top) a ^= m;
  }
  return res;
}

function gcd(a: Polynomial, b: Polynomial): Polynomial {
  while (b !== 0n) [a, b] = [b, polyMod(a, b)];
  return a;
}

/**
 * Ben-Or's test: p of degree n is irreducible iff gcd(p, x^(2^i) − x mod p) = 1 for i = 1..⌊n/2⌋.
 * Constants (degree < 1) are not irreducible.
 */
export function isIrreducible(p: Polynomial): boolean {
  const n = degree(p);
  if (n < 1) return false;
  let h = 2n; // x
  for (let i = 1; i <= n >> 1; i++) {
    h = mulMod(h, h, p); // x^(2^i) mod p
    if (gcd(p, polyMod(h ^ 2n, p)) !== 1n) return false;
  }
  return true;
}

/** restic writes the polynomial into `config` as lower-case hex without prefix. */
export function formatPolynomial(p: Polynomial): string {
  return p.toString(16);
}

/** Parses `chunker_polynomial` from a repository config; like restic, rejects any polynomial it could not chunk with. */
export function parsePolynomial(hex: string): Polynomial {
  // restic parses the field with strconv.ParseUint(s, 16, 64): bare hex digits, either case, at most 64 bits.
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) {
    throw new IntegrityError(`invalid chunker polynomial ${JSON.stringify(hex)}: not a 64-bit hex number`);
  }
  const p = BigInt('0x' + hex);
  if (degree(p) !== POLYNOMIAL_DEGREE) {
    throw new IntegrityError(`invalid chunker polynomial ${hex}: degree ${degree(p)}, want ${POLYNOMIAL_DEGREE}`);
  }
  if (!isIrreducible(p)) throw new IntegrityError(`invalid chunker polynomial ${hex}: not irreducible`);
  return p;
}

const MASK_54 = (1n << 54n) - 1n;
const RANDOM_TRIES = 1_000_000;

/**
 * Picks a polynomial the way restic does for `init`: 64 random bits (little endian), keep bits 0..53,
 * force bit 53 (degree) and bit 0 (else divisible by x), retry until irreducible (about 1 in 27 is).
 */
export function randomPolynomial(): Polynomial {
  for (let i = 0; i < RANDOM_TRIES; i++) {
    const p = (randomBytes(8).readBigUInt64LE(0) & MASK_54) | (1n << 53n) | 1n;
    if (isIrreducible(p)) return p;
  }
  throw new ResticError('unable to find a random irreducible polynomial');
}
