export { compilePatterns, invalidPatterns, matchPattern, type CompileOptions, type Matcher, type MatchResult } from './filter.js';
export { decodeTextFile, goExpand, parsePatternFile, readPatternFiles, splitLines } from './pattern-file.js';
export { bytesToMatchString, goClean, goMatch, BadPatternError } from './gomatch.js';
