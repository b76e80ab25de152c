export { MIN_SIZE, MAX_SIZE, Chunker, Splitter, cutPoints } from './chunker.js';
export {
  type Polynomial,
  POLYNOMIAL_DEGREE,
  parsePolynomial,
  formatPolynomial,
  randomPolynomial,
  isIrreducible,
} from './polynomial.js';
