// What the schema cannot say about the auth block (README, "Authentication"), each problem with its
// path, like the CORS rules (rules.ts): the identity provider reached over https (plain http on
// loopback only), a block that authenticates nothing, claims that jose already checks, and an API key
// file that cannot be read or holds something that is not a SHA-256 digest.
import { readKeyFile } from '../auth/key-file.ts'
import { isSecureUrl } from '../auth/urls.ts'

type Doc = Record<string, unknown>
const obj = (v: unknown): Doc => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Doc : {})

/** Claims jwtVerify checks itself from auth.jwt's other fields. */
const CHECKED_CLAIMS = new Set(['iss', 'aud', 'exp', 'nbf', 'iat'])

function urlProblem (at: string, value: unknown): string[] {
  if (typeof value !== 'string' || !/^https?:\/\//.test(value) || isSecureUrl(value)) return []
  return [`${at}: "${value}" must be an https URL (plain http only on loopback), without credentials or fragment: anyone on the path could serve their own keys`]
}

function jwtProblems (jwt: Doc): string[] {
  const problems = [...urlProblem('auth.jwt.issuer', jwt.issuer), ...urlProblem('auth.jwt.jwksUrl', jwt.jwksUrl)]
  for (const claim of Object.keys(obj(jwt.requiredClaims))) {
    if (CHECKED_CLAIMS.has(claim)) problems.push(`auth.jwt.requiredClaims.${claim}: is checked from issuer, audiences and clockTolerance; remove it`)
  }
  return problems
}

/** Every problem of the auth block; `doc` may be schema-invalid. */
export function authProblems (doc: Doc): string[] {
  if (doc.auth === undefined) return []
  const auth = obj(doc.auth)
  if (auth.jwt === undefined && auth.apiKeys === undefined) return ['auth: configure jwt, apiKeys or both (or remove the block to turn authentication off)']
  const problems = auth.jwt === undefined ? [] : jwtProblems(obj(auth.jwt))
  const file = obj(auth.apiKeys).file
  if (typeof file === 'string' && file.startsWith('/')) {
    const read = readKeyFile(file)
    if (!read.ok) problems.push(...read.errors.map((e) => `auth.apiKeys.file: "${file}" ${e}`))
  }
  return problems
}
