// The public port's certificate and key (README, "HTTPS and HTTP/2"; docs/ARCHITECTURE.md, "TLS"):
// read and checked as a pair at start, and re-read whenever their files change, so that a renewed
// certificate serves new connections without a restart (tls-rotation.ts). Here: reading the two
// files and checking that they are one usable pair, with problems that never quote the key.
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import type { TlsVersion } from './config/schema.ts'

export interface TlsFiles {
  certFile: string
  keyFile: string
  minVersion: TlsVersion
}

/** A checked pair: what createSecureServer and setSecureContext take, and what the metrics and logs say. */
export interface TlsPair {
  options: SecureContextOptions & { minVersion: TlsVersion }
  /** The leaf's serial number (hex, as `openssl x509 -serial` prints it). */
  serial: string
  /** The leaf's notAfter. */
  validTo: Date
  /** SHA-256 of both files' bytes: a rotation that changes nothing is no rotation. */
  digest: string
}

export type PairResult = { ok: true, pair: TlsPair } | { ok: false, errors: string[] }

export async function readBoth (files: TlsFiles): Promise<{ cert: Buffer, key: Buffer } | string[]> {
  const read = async (field: 'certFile' | 'keyFile'): Promise<Buffer | string> => {
    try {
      return await readFile(files[field])
    } catch (err) {
      return `server.tls.${field}: "${files[field]}" cannot be read (${(err as NodeJS.ErrnoException).code as string})`
    }
  }
  const [cert, key] = await Promise.all([read('certFile'), read('keyFile')])
  const errors = [cert, key].filter((x) => typeof x === 'string')
  return errors.length > 0 ? errors : { cert: cert as Buffer, key: key as Buffer }
}

export function pairDigest (cert: Buffer, key: Buffer): string {
  return createHash('sha256').update(cert).update('\n').update(key).digest('hex')
}

/** The two files' contents as a pair, or why they are not one (neither ever quotes the key). */
export function checkPair (files: TlsFiles, cert: Buffer, key: Buffer): PairResult {
  let leaf: X509Certificate
  let privateKey: KeyObject
  try {
    leaf = new X509Certificate(cert)
  } catch {
    return { ok: false, errors: [`server.tls.certFile: "${files.certFile}" holds no PEM certificate`] }
  }
  try {
    privateKey = createPrivateKey(key)
  } catch {
    return { ok: false, errors: [`server.tls.keyFile: "${files.keyFile}" holds no PEM private key`] }
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    return { ok: false, errors: [`server.tls: the key in "${files.keyFile}" does not match the certificate in "${files.certFile}"`] }
  }
  const options = { cert, key, minVersion: files.minVersion }
  // The chain after the leaf is parsed here too, so a broken one is refused rather than served.
  try {
    createSecureContext(options)
  } catch (err) {
    return { ok: false, errors: [`server.tls.certFile: "${files.certFile}" cannot be used (${(err as Error).message})`] }
  }
  return { ok: true, pair: { options, serial: leaf.serialNumber, validTo: new Date(leaf.validTo), digest: pairDigest(cert, key) } }
}

/** Read and check the pair; each problem names its field. */
export async function readPair (files: TlsFiles): Promise<PairResult> {
  const both = await readBoth(files)
  return Array.isArray(both) ? { ok: false, errors: both } : checkPair(files, both.cert, both.key)
}
