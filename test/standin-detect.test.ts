import t from 'tap'
import { deidentify, detect, luhn, ner, newNumbering, reidentify } from './standin/detect.ts'
import type { EntityTypeSelector } from './standin/detect.ts'

const found = (text: string) => detect(text).map((d) => [d.label, d.text])

t.test('luhn', async (t) => {
  t.ok(luhn('4111 1111 1111 1111'))
  t.ok(luhn('5555-5555-5555-4444'))
  t.notOk(luhn('4111 1111 1111 1112'))
})

t.test('detectors', async (t) => {
  t.same(found('write to jane.roe+x@mail.example.org.'), [['EMAIL_ADDRESS', 'jane.roe+x@mail.example.org']])
  for (const phone of ['(555) 123-4567', '555.123.4567', '555-123-4567', '+1 555 123 4567', '+1-(555)-123-4567', '+44 20 7946 0958', '+33 1 23 45 67 89']) {
    t.same(found(`call ${phone} now`), [['PHONE_NUMBER', phone]], phone)
  }
  t.same(found('id 5551234567890'), [], 'a 13-digit non-Luhn number is neither a card nor a phone')
  t.same(found('card 4111111111111111, 5555 5555 5555 4444'), [
    ['CREDIT_CARD', '4111111111111111'],
    ['CREDIT_CARD', '5555 5555 5555 4444'],
  ])
  t.same(found('card 4111 1111 1111 1112'), [], 'fails Luhn')
  t.same(found('hosts 10.0.0.1, 255.255.255.255. bad: 256.1.1.1 1.2.3.4.5 v1.2.3.4'), [
    ['IP_ADDRESS', '10.0.0.1'],
    ['IP_ADDRESS', '255.255.255.255'],
  ])
  t.same(found('see https://example.com/a?b=c). or www.example.org, ok'), [
    ['URL', 'https://example.com/a?b=c'],
    ['URL', 'www.example.org'],
  ])
  t.same(found('Mary and John, not johnny or Johnson'), [
    ['NAME_GIVEN', 'Mary'],
    ['NAME_GIVEN', 'John'],
  ])
})

t.test('overlaps: detect keeps them, deidentify keeps the earliest, longest', async (t) => {
  const text = 'http://192.168.0.1/x'
  t.same(found(text), [
    ['URL', 'http://192.168.0.1/x'],
    ['IP_ADDRESS', '192.168.0.1'],
  ])
  t.equal(deidentify(text).processed_text, '[URL_1]')
  t.same(ner(text).entities.map((e) => e.label), ['URL', 'IP_ADDRESS'])
  t.same(found('John@example.com'), [
    ['EMAIL_ADDRESS', 'John@example.com'],
    ['NAME_GIVEN', 'John'],
  ])
  t.equal(deidentify('John@example.com').processed_text, '[EMAIL_ADDRESS_1]')
})

t.test('entity type selection', async (t) => {
  const text = 'John at john@example.com'
  const only = (types: EntityTypeSelector[]) => detect(text, { entity_types: types }).map((d) => d.label)
  t.same(only([{ type: 'ENABLE', value: ['EMAIL_ADDRESS'] }]), ['EMAIL_ADDRESS'])
  t.same(only([{ type: 'DISABLE', value: ['EMAIL_ADDRESS'] }]), ['NAME_GIVEN'])
  t.same(only([{ type: 'ENABLE', value: ['HIPAA'] }]), [], 'product-only groups are unknown to the stand-in')
  t.same(detect(text, {}).length, 2)
})

t.test('deidentify: markers, numbering, locations', async (t) => {
  const text = 'Jane (jane@x.io) wrote to John; cc jane@x.io and bob@x.io.'
  const item = deidentify(text)
  t.equal(item.processed_text, '[NAME_GIVEN_1] ([EMAIL_ADDRESS_1]) wrote to [NAME_GIVEN_2]; cc [EMAIL_ADDRESS_1] and [EMAIL_ADDRESS_2].')
  t.equal(item.entities_present, true)
  t.equal(item.characters_processed, text.length)
  t.same(item.languages_detected, { en: 0.9 })
  for (const e of item.entities) {
    t.equal(text.slice(e.location.stt_idx, e.location.end_idx), e.text)
    t.equal(item.processed_text.slice(e.location.stt_idx_processed, e.location.end_idx_processed), `[${e.processed_text}]`)
    t.same(Object.keys(e.labels), [e.best_label])
  }
  t.same(deidentify('nothing here'), {
    processed_text: 'nothing here',
    entities: [],
    entities_present: false,
    characters_processed: 12,
    languages_detected: { en: 0.9 },
  })
})

t.test('deidentify: shared numbering, unnumbered pattern, mask', async (t) => {
  const numbering = newNumbering()
  t.equal(deidentify('John', { numbering }).processed_text, '[NAME_GIVEN_1]')
  t.equal(deidentify('Mary, John', { numbering }).processed_text, '[NAME_GIVEN_2], [NAME_GIVEN_1]')
  t.equal(deidentify('John and Mary', { processed_text: { pattern: '[ENTITY_TYPE]' } }).processed_text, '[NAME_GIVEN] and [NAME_GIVEN]')
  const masked = deidentify('John at 10.0.0.1', { processed_text: { type: 'MASK' } })
  t.equal(masked.processed_text, '#### at ########')
  t.equal(masked.entities[0]?.processed_text, '####')
  t.equal(deidentify('John', { processed_text: { type: 'MASK', mask_character: '*' } }).processed_text, '****')
})

t.test('reidentify', async (t) => {
  const item = deidentify('Mail John at john@example.com')
  t.equal(reidentify(item.processed_text, item.entities), 'Mail John at john@example.com')
  t.equal(reidentify('Hi [NAME_1], [UNKNOWN_1] [] [x', [{ processed_text: 'NAME_1', text: 'Ann' }]), 'Hi Ann, [UNKNOWN_1] [] [x')
})

t.test('ner', async (t) => {
  t.same(ner('Mary: +44 20 7946 0958'), {
    entities: [
      { text: 'Mary', location: { stt_idx: 0, end_idx: 4 }, label: 'NAME_GIVEN', likelihood: 0.85 },
      { text: '+44 20 7946 0958', location: { stt_idx: 6, end_idx: 22 }, label: 'PHONE_NUMBER', likelihood: 0.9 },
    ],
  })
  t.same(ner('Mary', { entity_detection: { entity_types: [{ type: 'DISABLE', value: ['NAME_GIVEN'] }] } }), { entities: [] })
})
