// API keys for server-to-server callers (README, "Authentication"): the key file holds SHA-256 digests,
// never the keys, one a line with an optional label. A presented key is hashed and compared with every
// digest in constant time, without stopping at a match, so how long a lookup takes says nothing about
// which digest, or how much of one, it matched.
import { createHash, timingSafeEqual } from 'node:crypto'

export interface ApiKey {
  readonly digest: Buffer
  /** Names the caller in the rate limit and the identity reference; not secret, never the key. */
  readonly label: string
}

export type ParsedKeys = { ok: true; keys: ApiKey[] } | { ok: false; errors: string[] }

const DIGEST = /^[0-9a-fA-F]{64}$/
const LABEL = /^[A-Za-z0-9._:@-]{1,64}$/

/**
 * A key file's text → its keys, or every malformed line. A message names the line by its number and
 * never quotes it: a line that is not a digest may well be a key pasted by mistake.
 */
export function parseKeyFile (text: string): ParsedKeys {
  const keys: ApiKey[] = []
  const errors: string[] = []
  const seen = new Map<string, number>()
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const [hex, label, ...rest] = line.split(/\s+/) as [string, string | undefined, ...string[]]
    if (!DIGEST.test(hex) || rest.length > 0 || (label !== undefined && !LABEL.test(label))) {
      errors.push(`line ${i + 1} is not a SHA-256 hash (64 hex digits) optionally followed by a label of letters, digits and ._:@-`)
      return
    }
    const lower = hex.toLowerCase()
    const first = seen.get(lower)
    if (first !== undefined) { errors.push(`line ${i + 1} holds the same hash as line ${first}`); return }
    seen.set(lower, i + 1)
    keys.push({ digest: Buffer.from(lower, 'hex'), label: label ?? `sha256:${lower.slice(0, 8)}` })
  })
  return errors.length > 0 ? { ok: false, errors } : { ok: true, keys }
}

/** The label of the key whose SHA-256 is `presented`'s, or undefined. */
export function matchKey (keys: readonly ApiKey[], presented: string): string | undefined {
  const digest = createHash('sha256').update(presented).digest()
  let found: string | undefined
  for (const key of keys) {
    if (timingSafeEqual(key.digest, digest) && found === undefined) found = key.label
  }
  return found
}
