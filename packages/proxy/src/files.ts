/**
 * How the runtime reads the files a configuration names (certificates and keys, CA bundles,
 * certmaps, the vdmap, the spoof message). Building a runtime takes a reader rather than calling
 * the file system itself, so that whoever builds it decides where the bytes come from: the disk
 * at start-up, or bytes read earlier by a process that may read files the sessions' process may
 * not (root-only keys).
 */

import { readFileSync, statSync } from 'node:fs';
import { type Result, err, ok } from '@mmp/config';

export type FileError =
  /** The file could not be read: the errno code (ENOENT, EACCES, EISDIR …) or the message. */
  | { kind: 'unreadable'; code: string }
  /** With a size limit: a directory, device or pipe, whose size says nothing. */
  | { kind: 'not-a-file' }
  /** With a size limit: larger than allowed, not read. */
  | { kind: 'too-large'; size: number };

/** Read a whole file; with `maxBytes`, only a regular file of at most that size is read. */
export type ReadFile = (path: string, maxBytes?: number) => Result<Buffer, FileError>;

function unreadable(e: unknown): { ok: false; error: FileError } {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return err({ kind: 'unreadable', code: code ?? (e instanceof Error ? e.message : String(e)) });
}

export const readFromDisk: ReadFile = (path, maxBytes) => {
  try {
    if (maxBytes !== undefined) {
      // Checked before reading: a mistaken path to a huge file must not be read into memory.
      const st = statSync(path);
      if (!st.isFile()) return err({ kind: 'not-a-file' });
      if (st.size > maxBytes) return err({ kind: 'too-large', size: st.size });
    }
    return ok(readFileSync(path));
  } catch (e) {
    return unreadable(e);
  }
};

/** The reason a file could not be read, as messages put it (`ENOENT`). */
export function fileErrorText(e: FileError): string {
  switch (e.kind) {
    case 'unreadable':
      return e.code;
    case 'not-a-file':
      return 'not a regular file';
    case 'too-large':
      return `${e.size} bytes, too large`;
  }
}
