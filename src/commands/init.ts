import type { Backend } from '../backends/backend.js';
import { Repository, type InitOptions } from '../repo/repository.js';

export interface InitCommandOptions extends InitOptions {
  password: string;
}

/** `restic init`: creates a repository and returns it opened. */
export function init(backend: Backend, options: InitCommandOptions): Promise<Repository> {
  const { password, ...rest } = options;
  return Repository.init(backend, password, rest);
}
