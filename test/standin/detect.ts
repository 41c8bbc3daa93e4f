// DEVELOPMENT STAND-IN — NOT THE PRIVATE AI PRODUCT.
//
// A handful of regular expressions that mimic the *shape* of the Private AI
// container's responses so the sidecar, its demo and front-end developers can
// work without a licence. It finds only obvious patterns and misses most
// personal data: never use it to de-identify anything real.
//
// Pure functions, no I/O.

export type Label = 'EMAIL_ADDRESS' | 'PHONE_NUMBER' | 'CREDIT_CARD' | 'IP_ADDRESS' | 'URL' | 'NAME_GIVEN'

export const LABELS: readonly Label[] = ['EMAIL_ADDRESS', 'PHONE_NUMBER', 'CREDIT_CARD', 'IP_ADDRESS', 'URL', 'NAME_GIVEN']

/** Marker patterns the stand-in understands (`processed_text.pattern`). */
export const MARKER_PATTERNS = ['[UNIQUE_NUMBERED_ENTITY_TYPE]', '[ENTITY_TYPE]', '[BEST_ENTITY_TYPE]'] as const
export type MarkerPattern = (typeof MARKER_PATTERNS)[number]

export interface ProcessedTextOptions {
  type?: 'MARKER' | 'MASK';
  pattern?: MarkerPattern;
  mask_character?: string;
}

export interface EntityTypeSelector {
  type: 'ENABLE' | 'DISABLE';
  value: string[];
}

export interface EntityDetectionOptions {
  entity_types?: EntityTypeSelector[];
}

/** Marker numbers already handed out; shared by the items of one request when `link_batch` is true. */
export interface Numbering {
  byValue: Map<string, number>;
  perLabel: Map<string, number>;
}

export interface DeidentifyOptions {
  processed_text?: ProcessedTextOptions;
  entity_detection?: EntityDetectionOptions;
  numbering?: Numbering;
}

export interface Entity {
  processed_text: string;
  text: string;
  location: { stt_idx: number; end_idx: number; stt_idx_processed: number; end_idx_processed: number };
  best_label: string;
  labels: Record<string, number>;
}

export interface ProcessedItem {
  processed_text: string;
  entities: Entity[];
  entities_present: boolean;
  characters_processed: number;
  languages_detected: Record<string, number>;
}

export interface NerEntity {
  text: string;
  location: { stt_idx: number; end_idx: number };
  label: string;
  likelihood: number;
}

export interface Detection {
  label: Label;
  text: string;
  start: number;
  end: number;
  score: number;
}

const GIVEN_NAMES = ['James', 'John', 'Robert', 'Michael', 'David', 'Mary', 'Patricia', 'Jennifer', 'Linda', 'Sarah', 'Jane', 'Maria', 'Adam', 'Emma', 'Olivia']

/** Luhn checksum over the digits of `s` (other characters are ignored). */
export function luhn (s: string): boolean {
  const digits = s.replace(/\D/g, '')
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i])
    if (i % 2 === 1) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
  }
  return sum % 10 === 0
}

interface Detector {
  label: Label;
  score: number;
  pattern: RegExp;
  accept?: (match: string) => boolean;
}

// Lookbehinds anchor matches at token starts, which keeps the scans linear on long tokens.
const DETECTORS: Detector[] = [
  { label: 'URL', score: 0.93, pattern: /\b(?:https?:\/\/|www\.)[^\s<>"']*[^\s<>"'.,;:!?)\]]/g },
  { label: 'EMAIL_ADDRESS', score: 0.96, pattern: /(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?![\w-])/g },
  { label: 'CREDIT_CARD', score: 0.94, pattern: /(?<![\w+])\d(?:[ -]?\d){12,18}(?!\w)/g, accept: luhn },
  {
    label: 'PHONE_NUMBER',
    score: 0.9,
    pattern: /(?<![\w+])(?:\+1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}(?!\w)|(?<![\w+])\+[2-9]\d{0,2}(?:[ .-]?\d){6,12}(?!\w)/g,
  },
  { label: 'IP_ADDRESS', score: 0.92, pattern: /(?<!\w|\d\.)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\w|\.\d)/g },
  { label: 'NAME_GIVEN', score: 0.85, pattern: new RegExp(`\\b(?:${GIVEN_NAMES.join('|')})\\b`, 'g') },
]

function enabledLabels (selectors: EntityTypeSelector[] = []): Set<string> {
  const enabled = selectors.filter((s) => s.type === 'ENABLE').flatMap((s) => s.value)
  const set = new Set<string>(enabled.length > 0 ? enabled : LABELS)
  for (const s of selectors) if (s.type === 'DISABLE') for (const v of s.value) set.delete(v)
  return set
}

/** Every match of every enabled detector, overlaps included, by start then longest first. */
export function detect (text: string, entityDetection: EntityDetectionOptions = {}): Detection[] {
  const enabled = enabledLabels(entityDetection.entity_types)
  const found: Detection[] = []
  for (const { label, score, pattern, accept } of DETECTORS) {
    if (!enabled.has(label)) continue
    for (const m of text.matchAll(pattern)) {
      if (accept && !accept(m[0])) continue
      found.push({ label, score, text: m[0], start: m.index, end: m.index + m[0].length })
    }
  }
  return found.sort((a, b) => a.start - b.start || b.end - a.end)
}

/** Keeps the earliest, then longest, of overlapping detections (an IP inside a URL belongs to the URL). */
function resolveOverlaps (detections: Detection[]): Detection[] {
  const kept: Detection[] = []
  let end = 0
  for (const d of detections) {
    if (d.start < end) continue
    kept.push(d)
    end = d.end
  }
  return kept
}

export function newNumbering (): Numbering {
  return { byValue: new Map(), perLabel: new Map() }
}

function numberFor (numbering: Numbering, label: string, text: string): number {
  const key = `${label}\u0000${text}`
  let n = numbering.byValue.get(key)
  if (n === undefined) {
    n = (numbering.perLabel.get(label) ?? 0) + 1
    numbering.perLabel.set(label, n)
    numbering.byValue.set(key, n)
  }
  return n
}

/** Replaces detected entities with markers (`[EMAIL_ADDRESS_1]`, the product's default) or a mask. */
export function deidentify (text: string, options: DeidentifyOptions = {}): ProcessedItem {
  const { type = 'MARKER', pattern = '[UNIQUE_NUMBERED_ENTITY_TYPE]', mask_character: maskCharacter = '#' } = options.processed_text ?? {}
  const numbering = options.numbering ?? newNumbering()
  const entities: Entity[] = []
  let out = ''
  let cursor = 0
  for (const d of resolveOverlaps(detect(text, options.entity_detection))) {
    let name: string
    let replacement: string
    if (type === 'MASK') {
      name = replacement = maskCharacter.repeat(d.text.length)
    } else {
      name = pattern === '[UNIQUE_NUMBERED_ENTITY_TYPE]' ? `${d.label}_${numberFor(numbering, d.label, d.text)}` : d.label
      replacement = `[${name}]`
    }
    out += text.slice(cursor, d.start)
    const sttProcessed = out.length
    out += replacement
    entities.push({
      processed_text: name,
      text: d.text,
      location: { stt_idx: d.start, end_idx: d.end, stt_idx_processed: sttProcessed, end_idx_processed: out.length },
      best_label: d.label,
      labels: { [d.label]: d.score },
    })
    cursor = d.end
  }
  out += text.slice(cursor)
  return {
    processed_text: out,
    entities,
    entities_present: entities.length > 0,
    characters_processed: text.length,
    languages_detected: { en: 0.9 },
  }
}

/** Puts the original values back in place of `[MARKER]`s; unknown markers are left as they are. */
export function reidentify (processedText: string, entities: ReadonlyArray<{ processed_text: string; text: string }>): string {
  const byMarker = new Map(entities.map((e) => [e.processed_text, e.text]))
  return processedText.replace(/\[([^[\]]+)\]/g, (marker, name: string) => byMarker.get(name) ?? marker)
}

/** Entities only, overlapping ones included (as the product's `/ner/text` does). */
export function ner (text: string, options: Pick<DeidentifyOptions, 'entity_detection'> = {}): { entities: NerEntity[] } {
  return {
    entities: detect(text, options.entity_detection).map((d) => ({
      text: d.text,
      location: { stt_idx: d.start, end_idx: d.end },
      label: d.label,
      likelihood: d.score,
    })),
  }
}
