// Where an identity provider may be reached: https, or plain http on loopback only (a stand-in in a
// test or a node-local agent); anywhere else a man in the middle could hand over its own keys.
import { isLoopbackHost } from '../cors/origin.ts'

export function isSecureUrl (value: string): boolean {
  let url: URL
  try { url = new URL(value) } catch { return false }
  if (url.username !== '' || url.password !== '' || url.hash !== '') return false
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
}
