import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openBackend, parseLocation, redactLocation } from '../src/backends/location.js';
import { LocalBackend } from '../src/backends/local/local.js';
import { MemoryBackend } from '../src/backends/memory/memory.js';
import type { Location } from '../src/backends/options.js';
import { RetryBackend } from '../src/backends/retry.js';
import { UsageError } from '../src/errors.js';

type Want = Location | { error: string };
/** [input, expected]; an `error` is a substring of the UsageError's message. */
type Case = [string, Want];

const local = (path: string): Location => ({ kind: 'local', path: resolve(path) });
const rest = (url: string, username?: string, password?: string): Location => ({
  kind: 'rest',
  url,
  ...(username === undefined ? {} : { username }),
  ...(password === undefined ? {} : { password }),
});
const s3 = (endpoint: string, bucket: string, prefix = '', useTls = true): Location => ({ kind: 's3', endpoint, useTls, bucket, prefix });
const sftp = (host: string, path: string, user?: string, port?: number): Location => ({
  kind: 'sftp',
  host,
  path,
  ...(user === undefined ? {} : { user }),
  ...(port === undefined ? {} : { port }),
});
const err = (error: string): Want => ({ error });

// restic's own location forms (restic doc/030_preparing_a_new_repo.rst and its parser tests).
const RESTIC: Case[] = [
  ['local:/srv/repo', local('/srv/repo')],
  ['local:dir1/dir2', local('dir1/dir2')],
  ['local:../dir1/dir2', local('../dir1/dir2')],
  ['dir1/dir2', local('dir1/dir2')],
  ['/dir1/dir2', local('/dir1/dir2')],
  ['/dir1:foobar/dir2', local('/dir1:foobar/dir2')],
  ['../dir1:foobar', local('../dir1:foobar')],
  ['\\dir1\\foobar\\dir2', local('\\dir1\\foobar\\dir2')],
  ['c:\\dir1\\foobar\\dir2', local('c:\\dir1\\foobar\\dir2')],
  ['c:/dir1/foobar/dir2', local('c:/dir1/foobar/dir2')],
  ['memory:', { kind: 'memory' }],

  ['rest:http://hostname.foo:1234/', rest('http://hostname.foo:1234/')],
  ['rest:http://host:8000', rest('http://host:8000/')],
  ['rest:https://host:8000/', rest('https://host:8000/')],
  ['rest:https://user:pass@host:8000/', rest('https://host:8000/', 'user', 'pass')],
  ['rest:https://user:pass@host:8000/my_backup_repo/', rest('https://host:8000/my_backup_repo/', 'user', 'pass')],
  ['rest:https://us%20er:p%40ss%3Aw%2F@host/repo', rest('https://host/repo/', 'us er', 'p@ss:w/')],
  ['rest:https://user:p@ss@host/', rest('https://host/', 'user', 'p@ss')],
  ['rest:http://user@host/', rest('http://host/', 'user', '')],
  ['rest:http://user:@host:1234/path', rest('http://host:1234/path/', 'user', '')],
  ['rest:http://[::1]:8000/repo', rest('http://[::1]:8000/repo/')],
  ['rest:HTTP://Host.Example:8000/Repo', rest('http://host.example:8000/Repo/')],
  ['rest:http://host:/repo/', rest('http://host/repo/')],

  ['s3:s3.amazonaws.com/bucket', s3('s3.amazonaws.com', 'bucket')],
  ['s3:s3.amazonaws.com/bucket/prefix/dir', s3('s3.amazonaws.com', 'bucket', 'prefix/dir')],
  ['s3://eu-central-1/bucketname', s3('eu-central-1', 'bucketname')],
  ['s3://hostname.foo/bucketname/prefix/directory', s3('hostname.foo', 'bucketname', 'prefix/directory')],
  ['s3:eu-central-1/repo/prefix/directory', s3('eu-central-1', 'repo', 'prefix/directory')],
  ['s3:https://hostname.foo/repo', s3('hostname.foo', 'repo')],
  ['s3:https://hostname.foo/repo/prefix/directory', s3('hostname.foo', 'repo', 'prefix/directory')],
  ['s3:http://hostname.foo/repo', s3('hostname.foo', 'repo', '', false)],
  ['s3:http://127.0.0.1:9000/bucket', s3('127.0.0.1:9000', 'bucket', '', false)],
  ['s3:http://[::1]:9000/bucket/p', s3('[::1]:9000', 'bucket', 'p', false)],
  ['s3:minio.local:9000/bucket/', s3('minio.local:9000', 'bucket')],
  ['s3:host/bucket/a//b/../c/', s3('host', 'bucket', 'a/c')],
  ['s3:host/bucket//x', s3('host', 'bucket', 'x')],
  ['s3:host/bucket/./', s3('host', 'bucket')],
  ['s3:http://host/my%20bucket/p%2Fq', s3('host', 'my bucket', 'p/q', false)],

  ['sftp:user@host:/srv/repo', sftp('host', '/srv/repo', 'user')],
  ['sftp:host:/srv/repo', sftp('host', '/srv/repo')],
  ['sftp:host:path', sftp('host', 'path')],
  ['sftp:user@host:relpath/./x/', sftp('host', 'relpath/x', 'user')],
  ['sftp://user@host/srv/repo', sftp('host', 'srv/repo', 'user')],
  ['sftp://user@host//srv/repo', sftp('host', '/srv/repo', 'user')],
  ['sftp://user@host:2222//srv/repo', sftp('host', '/srv/repo', 'user', 2222)],
  ['sftp://user@[::1]:2222//srv/restic-repo', sftp('::1', '/srv/restic-repo', 'user', 2222)],
  ['sftp://host/', sftp('host', '.')],
  ['sftp://us%40er@host/x', sftp('host', 'x', 'us@er')],
  ['sftp:user@domain@host:/srv', sftp('host', '/srv', 'user@domain')],
  // Our addition: restic cuts at the first ":", so it cannot take an IPv6 host in this form.
  ['sftp:user@[::1]:/srv/repo', sftp('::1', '/srv/repo', 'user')],
  ['sftp:[fe80::1%eth0]:repo', sftp('fe80::1%eth0', 'repo')],
];

const BAD: Case[] = [
  ['', err('no repository given')],
  ['local:', err('local: no path given')],
  ['memory:x', err('memory: takes no path')],
  ['foobar:xxx', err('unknown backend "foobar"')],
  ['foobar:/dir/dir2', err('unknown backend "foobar"')],
  ['dir:1', err('for a local directory add "local:"')],
  ['b2:bucket:/prefix', err('backend "b2" is not supported')],
  ['rclone:remote:path', err('backend "rclone" is not supported')],
  ['azure:container:/', err('backend "azure" is not supported')],
  ['gs:bucket:/', err('backend "gs" is not supported')],
  ['swift:container17:/', err('backend "swift" is not supported')],

  ['rest:', err('rest: needs an http:// or https:// URL')],
  ['rest:ftp://host/', err('rest: needs an http:// or https:// URL')],
  ['rest:http+unix:///tmp/rest.socket:/repo/', err('rest: needs an http:// or https:// URL')],
  ['rest:http://', err('rest: no host name')],
  ['rest:http:///repo', err('rest: no host name')],
  ['rest:http://host/repo?x=1', err('rest: URL must not have a query or fragment')],
  ['rest:http://host/repo#x', err('rest: URL must not have a query or fragment')],
  ['rest:http://host:0/', err('rest: bad port "0"')],
  ['rest:http://host:65536/', err('rest: bad port "65536"')],
  ['rest:http://[::1/', err('rest: unclosed "["')],
  ['rest:http://user:%zz@host/', err('rest: bad %-escape')],

  ['s3:', err('s3: no host name')],
  ['s3:s3.amazonaws.com', err('s3: no bucket name')],
  ['s3:s3.amazonaws.com/', err('s3: no bucket name')],
  ['s3:http://host', err('s3: no bucket name')],
  ['s3:http://host/', err('s3: no bucket name')],
  ['s3:http://key:secret@host/bucket', err('s3: credentials do not belong in the location')],
  ['s3:key:secret@host/bucket', err('s3: credentials do not belong in the location')],
  ['s3:http://host/bucket?x', err('s3: URL must not have a query or fragment')],
  ['s3:http://host:/bucket', err('s3: bad port ""')],
  ['s3:http://host/b%zz', err('s3: bad %-escape')],

  ['sftp:', err('sftp: host or path missing')],
  ['sftp:host', err('sftp: host or path missing')],
  ['sftp::/srv', err('sftp: no host name')],
  ['sftp:user@:/srv', err('sftp: no host name')],
  ['sftp:///srv', err('sftp: no host name')],
  ['sftp://user@host', err('sftp: no directory given')],
  ['sftp://host:99999/x', err('sftp: bad port "99999"')],
  ['sftp:user@host:~/repo', err('SFTP servers do not expand "~"')],
  ['sftp://user@host/~/repo', err('SFTP servers do not expand "~"')],
  ['sftp://user:secret@host/x', err('sftp: passwords are not supported')],
  ['sftp://user@host/x?y', err('sftp: URL must not have a query or fragment')],
  ['sftp:user@host,net:/x', err('sftp: bad host name "host,net"')],
];

// Every URL form chectl 7.33–7.42 (`server:backup -r`, src/api/backup-restore.ts and its tests) accepted or
// rejected, with what restic — and so restic-ts — makes of the same string. chectl parsed with its own
// regexes and rebuilt the location for the operator; restic-ts takes the string as restic does, so the
// forms chectl invented (`rest:host`, `rest://…`, `s3:/bucket`, `s3://http://…`) are errors here, and
// `sftp:user@host:1234/path` is a relative path "1234/path" on port 22, exactly as for restic.
const CHECTL_ACCEPTED: Case[] = [
  ['rest:my-host', err('rest: needs an http:// or https:// URL')],
  ['rest://my-host', err('rest: needs an http:// or https:// URL')],
  ['rest://http://my-host', err('rest: needs an http:// or https:// URL')],
  ['rest:http://my-host', rest('http://my-host/')],
  ['rest://http://my-host:1234', err('rest: needs an http:// or https:// URL')],
  ['rest://http://my-host:1234/path', err('rest: needs an http:// or https:// URL')],
  ['rest:http://my-host:1234/path/', rest('http://my-host:1234/path/')],
  ['rest://http://my-host:1234/path/repo', err('rest: needs an http:// or https:// URL')],
  ['rest://my-host:1234/path/repo/', err('rest: needs an http:// or https:// URL')],
  ['rest://http://user:password@my-host:1234/path/repo', err('rest: needs an http:// or https:// URL')],
  ['rest://user:password@my-host:1234/path/repo', err('rest: needs an http:// or https:// URL')],
  ['rest://my-host:my-host@my-host:1234/my-host', err('rest: needs an http:// or https:// URL')],
  ['rest:https://host', rest('https://host/')],
  ['rest://https://host', err('rest: needs an http:// or https:// URL')],
  ['rest:http://user:password@host/path', rest('http://host/path/', 'user', 'password')],
  ['rest:https://user:password@host:1234/path', rest('https://host:1234/path/', 'user', 'password')],
  ['rest:host', err('rest: needs an http:// or https:// URL')],
  ['rest:user:password@host/path', err('rest: needs an http:// or https:// URL')],
  ['rest:user:password@host:1234/path', err('rest: needs an http:// or https:// URL')],
  ['rest:host:18888', err('rest: needs an http:// or https:// URL')],
  ['rest://host:18888/path/to-repo', err('rest: needs an http:// or https:// URL')],
  ['rest://http://user:1234@host:1234/path', err('rest: needs an http:// or https:// URL')],
  ['rest://host/path-to/repo', err('rest: needs an http:// or https:// URL')],
  ['rest:host:8888/path/my.repo/', err('rest: needs an http:// or https:// URL')],
  ['rest:http://host:8888/.path/.repo/', rest('http://host:8888/.path/.repo/')],
  ['rest:http://host:8888/1111/2222', rest('http://host:8888/1111/2222/')],
  ['rest://user:password12@host:8888/2222', err('rest: needs an http:// or https:// URL')],
  ['rest://mYUser:test1234@host.net', err('rest: needs an http:// or https:// URL')],
  ['rest:http://user:t*O_s2F:u-hIP02p@host.net/path', rest('http://host.net/path/', 'user', 't*O_s2F:u-hIP02p')],
  ['rest:http://user:er:1234@host:fdf@df@host.net/path', rest('http://host.net/path/', 'user', 'er:1234@host:fdf@df')],
  ['rest:http://user::1234@test:1234:test@@host.net/path', rest('http://host.net/path/', 'user', ':1234@test:1234:test@')],
  ['rest:my_user12:dhUi8Js9m0leRf7s@host.net:1234/path', err('rest: needs an http:// or https:// URL')],
  ['rest://https://user:host:1234@host.net:1245/path-to/repo', err('rest: needs an http:// or https:// URL')],
  ['rest://http://myuser12:yh3j:sum_8m2Jk@rest-server.domain.net:4200/che-repo', err('rest: needs an http:// or https:// URL')],

  ['s3:/bucket', err('s3: no host name')],
  ['s3:/bucket/', err('s3: no host name')],
  ['s3:///bucket', err('s3: no host name')],
  ['s3:///bucket/', err('s3: no host name')],
  ['s3://http://my.minio.net/bucket', err('s3: write s3:http://')],
  ['s3:http://my.minio.net/bucket', s3('my.minio.net', 'bucket', '', false)],
  ['s3://http://127.0.0.1:1234/bucket/', err('s3: write s3:http://')],
  ['s3://https://sub.my-host.net:1234/bucket/', err('s3: write s3:https://')],
  ['s3:http://s3.amazonaws.com:1234/bucket-name', s3('s3.amazonaws.com:1234', 'bucket-name', '', false)],
  ['s3://host.net:88/bucket', s3('host.net:88', 'bucket')],
  ['s3://host.net:18888/bucket/', s3('host.net:18888', 'bucket')],
  ['s3://host.net/bucket_che', s3('host.net', 'bucket_che')],
  ['s3:host.net:8888/12345/', s3('host.net:8888', '12345')],
  ['s3:http://host.net:8888/bucket/sub', s3('host.net:8888', 'bucket', 'sub', false)],
  ['s3://host.net/bucket/sub/', s3('host.net', 'bucket', 'sub')],
  ['s3://http://s3-server.domain.net:4200/che-bucket', err('s3: write s3:http://')],

  ['sftp:user@my.host:/', sftp('my.host', '/', 'user')],
  ['sftp://user@my.host:/', sftp('my.host', '.', 'user')],
  ['sftp:user@127.0.0.1:/path/to', sftp('127.0.0.1', '/path/to', 'user')],
  ['sftp://user@sub.my-host.net:/path/to', sftp('sub.my-host.net', 'path/to', 'user')],
  ['sftp://test_user@host:1234/relpath/to', sftp('host', 'relpath/to', 'test_user', 1234)],
  ['sftp://user2@host:1234//abspath/to', sftp('host', '/abspath/to', 'user2', 1234)],
  ['sftp:user@host.net:1234/path/to', sftp('host.net', '1234/path/to', 'user')],
  ['sftp:user@host.net:1234//path/to', sftp('host.net', '1234/path/to', 'user')],
  ['sftp://user@host.net:88/path/to', sftp('host.net', 'path/to', 'user', 88)],
  ['sftp://user@host.net:18888//path/to', sftp('host.net', '/path/to', 'user', 18888)],
  ['sftp:user@host.net:path-to/dir/', sftp('host.net', 'path-to/dir', 'user')],
  ['sftp://user@host.net:path_to/dir', err('sftp: bad port "path_to"')],
  ['sftp://user@host.net:/12345/54321/', sftp('host.net', '12345/54321', 'user')],
  ['sftp:user@host.net:1234//12345', sftp('host.net', '1234/12345', 'user')],
  ['sftp://user@host.net:1234//12345/', sftp('host.net', '/12345', 'user', 1234)],
  ['sftp://webadmin@server.domain.net:2222//srv/static/sftp/', sftp('server.domain.net', '/srv/static/sftp', 'webadmin', 2222)],
];

// chectl's tests list these as rejected (its assertion never ran, so some passed its regexes anyway).
const CHECTL_REJECTED: Case[] = [
  ['rest:/host/path', err('rest: needs an http:// or https:// URL')],
  ['rest://host,net/path', err('rest: needs an http:// or https:// URL')],
  ['rest:http://host,net/path', err('rest: bad host name "host,net"')],
  ['rest:proto://host/path', err('rest: needs an http:// or https:// URL')],
  ['rest://host:port/path', err('rest: needs an http:// or https:// URL')],
  ['rest:http://host:port/path', err('rest: bad port "port"')],
  ['rest://host:123s/path', err('rest: needs an http:// or https:// URL')],
  ['rest:http://host:123s/path', err('rest: bad port "123s"')],
  ['rest:user@host/path', err('rest: needs an http:// or https:// URL')],
  ['rest:user:@host/path', err('rest: needs an http:// or https:// URL')],
  ['rest://http://user:@host:1234/path', err('rest: needs an http:// or https:// URL')],
  ['s3:host,net/bucket', err('s3: bad host name "host,net"')],
  ['s3://host,net/bucket', err('s3: bad host name "host,net"')],
  ['s3:proto://host.net/bucket', err('s3: write s3:http://')],
  ['s3:http://host.net:port/bucket', err('s3: bad port "port"')],
  ['s3:http://host.net:11p/bucket', err('s3: bad port "11p"')],
  ['sfpt:user@host.net/path', err('unknown backend "sfpt"')],
  ['sfpt://user@host.net/path', err('unknown backend "sfpt"')],
  // restic reads these two as host "user" / a path with "@" and ":" in it; so do we.
  ['sftp:user:user@host.net/path', sftp('user', 'user@host.net/path')],
  ['sftp:user@user@host.net/path', err('sftp: host or path missing')],
  ['sftp:user@host.net:port//path', sftp('host.net', 'port/path', 'user')],
  ['sftp:user@host.net:1234:path', sftp('host.net', '1234:path', 'user')],
];

function check([input, want]: Case, env: NodeJS.ProcessEnv = {}): void {
  if ('error' in want) {
    let caught: unknown;
    try {
      parseLocation(input, env);
    } catch (e) {
      caught = e;
    }
    expect(caught, input).toBeInstanceOf(UsageError);
    const message = (caught as Error).message;
    expect(message, input).toContain(want.error);
    expect(message, input).not.toContain('\n');
    expect(message, input).toMatch(/e\.g\. /);
    for (const secret of ['secret', 'password12', 'dhUi8Js9m0leRf7s', 'yh3j', 't*O_s2F']) expect(message, input).not.toContain(secret);
  } else {
    expect(parseLocation(input, env), input).toEqual(want);
  }
}

describe('parseLocation', () => {
  it.each(RESTIC)('restic form %s', (input, want) => check([input, want]));
  it.each(BAD)('bad input %s', (input, want) => check([input, want]));
  it.each(CHECTL_ACCEPTED)('chectl accepted %s', (input, want) => check([input, want]));
  it.each(CHECTL_REJECTED)('chectl rejected %s', (input, want) => check([input, want]));

  it('takes every host, port and path chectl tested in the forms restic knows', () => {
    for (const host of ['host', 'my-host', 'my.host', 'sub.my-host.net', '127.0.0.1', 's3.amazonaws.com', 'my.minio.net']) {
      check([`rest:http://${host}:1234/path`, rest(`http://${host}:1234/path/`)]);
      check([`s3:http://${host}/bucket`, s3(host, 'bucket', '', false)]);
      check([`s3:https://${host}:1234/bucket/`, s3(`${host}:1234`, 'bucket')]);
      check([`sftp:user@${host}:/path/to`, sftp(host, '/path/to', 'user')]);
      check([`sftp://user@${host}:1234//abspath/to`, sftp(host, '/abspath/to', 'user', 1234)]);
    }
    for (const port of [88, 246, 1234, 18888]) {
      check([`rest:http://user:${port}@host:${port}/path`, rest(`http://host:${port}/path/`, 'user', String(port))]);
      check([`s3://host.net:${port}/bucket`, s3(`host.net:${port}`, 'bucket')]);
      check([`sftp://user@host.net:${port}/path/to`, sftp('host.net', 'path/to', 'user', port)]);
    }
    for (const path of ['path', 'path-to/repo', 'pathto/repo/', 'path-to/repo/', 'path/my.repo/', '.path/.repo/', '2222', '1111/2222']) {
      check([`rest:http://host:8888/${path}`, rest(`http://host:8888/${path.replace(/\/?$/, '/')}`)]);
    }
    for (const path of ['path', 'path/to', 'path-to/dir', 'path_to/dir', '12345', '12345/54321']) {
      for (const p of [path, `${path}/`, `/${path}`, `/${path}/`]) {
        check([`sftp:user@host.net:${p}`, sftp('host.net', p.replace(/\/$/, ''), 'user')]);
        check([`sftp://user@host.net:1234/${p}`, sftp('host.net', p.replace(/\/$/, ''), 'user', 1234)]);
      }
    }
  });

  it('takes REST credentials from the environment only when the URL has none', () => {
    const env = { REST_SERVER_USERNAME: 'envuser', REST_SERVER_PASSWORD: 'envpass' };
    check(['rest:http://host:8000/', rest('http://host:8000/', 'envuser', 'envpass')], env);
    check(['rest:http://u:p@host:8000/', rest('http://host:8000/', 'u', 'p')], env);
    check(['rest:http://u@host:8000/', rest('http://host:8000/', 'u', '')], env);
    check(['rest:http://host/', rest('http://host/', 'ruser', 'rpass')], { ...env, RESTIC_REST_USERNAME: 'ruser', RESTIC_REST_PASSWORD: 'rpass' });
    check(['rest:http://host/', rest('http://host/', 'envuser')], { REST_SERVER_USERNAME: 'envuser', REST_SERVER_PASSWORD: '' });
    check(['rest:http://host/', rest('http://host/')], {});
  });

  it('reads process.env when no environment is given', () => {
    const saved = process.env.REST_SERVER_USERNAME;
    process.env.REST_SERVER_USERNAME = 'from-process';
    try {
      expect(parseLocation('rest:http://host/')).toMatchObject({ username: 'from-process' });
    } finally {
      if (saved === undefined) delete process.env.REST_SERVER_USERNAME;
      else process.env.REST_SERVER_USERNAME = saved;
    }
  });
});

describe('redactLocation', () => {
  it.each([
    ['rest:https://user:secret@host:8000/repo/', 'rest:https://user:***@host:8000/repo/'],
    ['rest:https://user:p@ss@host/', 'rest:https://user:***@host/'],
    ['rest:http://:secret@host/', 'rest:http://:***@host/'],
    ['rest://http://user:secret@host:1234/path', 'rest://http://user:***@host:1234/path'],
    ['rest://user:secret@host:1234/path', 'rest://user:***@host:1234/path'],
    ['rest:user:secret@host/path', 'rest:user:***@host/path'],
    ['s3:http://key:secret@host/bucket', 's3:http://key:***@host/bucket'],
    ['sftp://user:secret@host/x', 'sftp://user:***@host/x'],
    ['rest:http://host:8000/', 'rest:http://host:8000/'],
    ['rest:https://user@host/', 'rest:https://user@host/'],
    ['rest:https://host/a@b/', 'rest:https://host/a@b/'],
    ['sftp:user@host:/srv', 'sftp:user@host:/srv'],
    ['sftp://user@[::1]:22//srv', 'sftp://user@[::1]:22//srv'],
    ['/plain/path@x', '/plain/path@x'],
    ['', ''],
  ])('%s', (input, want) => {
    expect(redactLocation(input)).toBe(want);
  });
});

describe('openBackend', () => {
  it('opens local and memory backends without the retry wrapper', async () => {
    expect(await openBackend('memory:')).toBeInstanceOf(MemoryBackend);
    const backend = await openBackend('local:/nonexistent/restic-ts-location-test');
    expect(backend).toBeInstanceOf(LocalBackend);
    expect(backend.location).toBe('/nonexistent/restic-ts-location-test');
  });

  it('wraps remote backends in the retry wrapper and keeps secrets out of the location', async () => {
    const backend = await openBackend('rest:http://user:secret@127.0.0.1:1/repo', { env: {} });
    try {
      expect(backend).toBeInstanceOf(RetryBackend);
      expect(backend.location).not.toContain('secret');
    } finally {
      await backend.close();
    }
  });

  it('loads the S3 and SFTP backends on demand, wrapped for retries, without connecting', async () => {
    const env = { AWS_ACCESS_KEY_ID: 'key', AWS_SECRET_ACCESS_KEY: 'secret', USER: 'tester' };
    for (const location of ['s3:http://127.0.0.1:1/bucket/prefix', 'sftp://tester@127.0.0.1:1//srv/repo']) {
      const backend = await openBackend(location, { env });
      try {
        expect(backend, location).toBeInstanceOf(RetryBackend);
        expect(backend.location).not.toContain('secret');
      } finally {
        await backend.close();
      }
    }
  });

  it('rejects a bad location or retry option with a UsageError', async () => {
    await expect(openBackend('')).rejects.toThrow(UsageError);
    await expect(openBackend('rest:host')).rejects.toThrow(UsageError);
    await expect(openBackend('rest:http://127.0.0.1:1/', { extended: { 'retry.max-attempts': '0' } })).rejects.toThrow(/retry\.max-attempts/);
  });
});
