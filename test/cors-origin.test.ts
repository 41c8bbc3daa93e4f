// Origin entries (configuration) and Origin header values (requests), per the README's "CORS,
// precisely" and WHATWG Fetch / HTML "serialization of an origin": lower-case scheme and host, no
// default port, no trailing slash, no path. Entries that could never match are configuration errors,
// never fixed up.
import t from 'tap'
import { isLoopbackHost, parseOriginEntry, parseRequestOrigin, patternMatches, type OriginEntry } from '../sidecar/cors/origin.ts'

/** The type of a subtest's `t`, as the test callback receives it. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]
type Pattern = Extract<OriginEntry, { kind: 'pattern' }>

function entry (text: string): OriginEntry {
  const r = parseOriginEntry(text)
  if (!r.ok) throw new Error(`test setup: ${text} ${r.error}`)
  return r.value
}

function pattern (text: string): Pattern {
  const v = entry(text)
  if (v.kind !== 'pattern') throw new Error(`test setup: ${text} is not a pattern`)
  return v
}

/** Expect a refusal whose message mentions `hint` (the sentence completes `"<entry>" …`). */
function refuses (t: Test, text: string, hint: RegExp): void {
  const r = parseOriginEntry(text)
  t.equal(r.ok, false, `${text} is refused`)
  if (!r.ok) t.match(r.error, hint, `${text}: ${r.error}`)
}

t.test('parseOriginEntry', async (t) => {
  t.test('accepts "*" alone as any origin', async (t) => {
    t.same(entry('*'), { kind: 'any', entry: '*' })
  })

  t.test('accepts exact origins in serialized form', async (t) => {
    const table: [string, { scheme: string; host: string }][] = [
      ['https://app.example.com', { scheme: 'https', host: 'app.example.com' }],
      ['http://localhost', { scheme: 'http', host: 'localhost' }],
      ['https://app.example.com:8443', { scheme: 'https', host: 'app.example.com' }],
      ['http://app.example.com:443', { scheme: 'http', host: 'app.example.com' }],
      ['https://app.example.com:80', { scheme: 'https', host: 'app.example.com' }],
      ['http://127.0.0.1:8080', { scheme: 'http', host: '127.0.0.1' }],
      ['https://xn--bcher-kva.example', { scheme: 'https', host: 'xn--bcher-kva.example' }],
      ['http://localhost:65535', { scheme: 'http', host: 'localhost' }],
      ['http://localhost:1', { scheme: 'http', host: 'localhost' }]
    ]
    for (const [text, want] of table) t.same(entry(text), { kind: 'exact', entry: text, ...want }, text)
  })

  t.test('accepts a bracketed IPv6 host, with or without a port', async (t) => {
    t.same(entry('http://[::1]:3000'), { kind: 'exact', entry: 'http://[::1]:3000', scheme: 'http', host: '[::1]' })
    t.same(entry('http://[::1]'), { kind: 'exact', entry: 'http://[::1]', scheme: 'http', host: '[::1]' })
    t.same(entry('http://[::1]:*'), { kind: 'pattern', entry: 'http://[::1]:*', scheme: 'http', suffix: undefined, host: '[::1]', port: '*' })
  })

  t.test('accepts any port (":*") as a pattern on one host', async (t) => {
    t.same(entry('http://localhost:*'), { kind: 'pattern', entry: 'http://localhost:*', scheme: 'http', suffix: undefined, host: 'localhost', port: '*' })
  })

  t.test('accepts a leftmost-label wildcard over a registrable domain', async (t) => {
    const table: [string, string, string | undefined][] = [
      ['https://*.example.com', '.example.com', undefined],
      ['https://*.example.co.uk', '.example.co.uk', undefined],
      ['https://*.me.github.io', '.me.github.io', undefined],
      ['https://*.example.com:8443', '.example.com', '8443'],
      ['https://*.example.com:*', '.example.com', '*']
    ]
    for (const [text, suffix, port] of table) {
      t.same(entry(text), { kind: 'pattern', entry: text, scheme: 'https', suffix, host: undefined, port }, text)
    }
  })

  t.test('refuses the "null" origin', async (t) => {
    refuses(t, 'null', /is refused: any sandboxed iframe/)
  })

  t.test('refuses text that is not scheme://host', async (t) => {
    for (const text of ['app.example.com', '://app.example.com', '', 'https:app.example.com', '*.example.com']) {
      refuses(t, text, /is not an origin/)
    }
  })

  t.test('refuses upper case, which browsers never send', async (t) => {
    for (const text of ['https://App.example.com', 'HTTPS://app.example.com', 'https://*.EXAMPLE.com', 'HTTP://LOCALHOST:*']) {
      refuses(t, text, /upper case/)
    }
  })

  t.test('refuses schemes other than http and https', async (t) => {
    for (const text of ['ftp://example.com', 'file://host', 'ws://example.com', 'chrome-extension://abcdef', '*://example.com']) {
      refuses(t, text, /only http and https/)
    }
  })

  t.test('refuses a trailing slash', async (t) => {
    for (const text of ['https://app.example.com/', 'https://app.example.com//', 'http://localhost:3000/']) {
      refuses(t, text, /trailing slash/)
    }
  })

  t.test('refuses a path, query, fragment or user info', async (t) => {
    for (const text of ['https://app.example.com/app', 'https://app.example.com?x=1', 'https://app.example.com#x', 'https://user@app.example.com', 'https://app.example.com/a/b']) {
      refuses(t, text, /path, query, fragment or user info/)
    }
  })

  t.test('refuses the default port written out', async (t) => {
    for (const text of ['https://app.example.com:443', 'http://app.example.com:80', 'http://localhost:80', 'http://[::1]:80', 'https://*.example.com:443']) {
      refuses(t, text, /default port/)
    }
  })

  t.test('refuses an invalid port', async (t) => {
    for (const text of ['https://app.example.com:', 'https://app.example.com:0', 'https://app.example.com:08443', 'https://app.example.com:65536', 'https://app.example.com:99999', 'https://app.example.com:123456', 'https://app.example.com:abc', 'http://localhost:8*', 'http://[::1]x']) {
      refuses(t, text, /invalid port/)
    }
  })

  t.test('refuses "*" anywhere but alone, as the leftmost label, or as the port', async (t) => {
    for (const text of ['https://*', 'https://*example.com', 'https://a*.example.com', 'https://app.*.example.com', 'https://**.example.com', 'https://example.*']) {
      refuses(t, text, /"\*" in the wrong place/)
    }
  })

  t.test('refuses a wildcard over a public suffix, private section included', async (t) => {
    for (const text of ['https://*.com', 'https://*.co.uk', 'https://*.github.io', 'https://*.appspot.com', 'http://*.com:*']) {
      refuses(t, text, /public suffix/)
    }
  })

  t.test('refuses a wildcard over an invalid host', async (t) => {
    for (const text of ['https://*.', 'https://*.*.example.com', 'https://*.exa_mple.com', 'https://*..example.com', 'http://*.[::1]']) {
      refuses(t, text, /invalid host/)
    }
  })

  t.test('refuses an invalid host', async (t) => {
    for (const text of ['https://', 'https://exa_mple.com', 'https://-app.example.com', 'https://app-.example.com', 'https://app..example.com', 'https://app.example.com.', 'http://[zz]', 'http://::1', `https://${'a'.repeat(64)}.example.com`, 'https://app example.com']) {
      refuses(t, text, /invalid host/)
    }
  })
})

t.test('parseRequestOrigin', async (t) => {
  t.test('splits a serialized origin into scheme, host and port', async (t) => {
    const table: [string, { scheme: string; host: string; port: string | undefined }][] = [
      ['https://app.example.com', { scheme: 'https', host: 'app.example.com', port: undefined }],
      ['http://localhost:3000', { scheme: 'http', host: 'localhost', port: '3000' }],
      ['http://[::1]:3000', { scheme: 'http', host: '[::1]', port: '3000' }],
      ['http://[::1]', { scheme: 'http', host: '[::1]', port: undefined }],
      ['chrome-extension://abcdef', { scheme: 'chrome-extension', host: 'abcdef', port: undefined }]
    ]
    for (const [value, want] of table) t.same(parseRequestOrigin(value), want, value)
  })

  t.test('refuses anything that is not a single serialized origin', async (t) => {
    const table = [
      '', 'null', 'app.example.com', 'https://app.example.com/', 'https://app.example.com/path',
      'https://app.example.com?q', 'https://user@app.example.com', 'HTTPS://app.example.com',
      'https://app.example.com, https://app.example.com', 'https://a.example.com, https://b.example.com',
      'http://localhost:', 'http://localhost:123456', 'file:///etc/passwd'
    ]
    for (const value of table) t.equal(parseRequestOrigin(value), undefined, JSON.stringify(value))
  })
})

t.test('patternMatches', async (t) => {
  const o = (value: string) => {
    const parsed = parseRequestOrigin(value)
    if (parsed === undefined) throw new Error(`test setup: ${value}`)
    return parsed
  }

  t.test('a wildcard covers one or more labels in front of the domain', async (t) => {
    const p = pattern('https://*.example.com')
    for (const value of ['https://a.example.com', 'https://a.b.example.com', 'https://xn--bcher-kva.example.com', 'https://a-1.example.com']) {
      t.equal(patternMatches(p, o(value)), true, value)
    }
  })

  t.test('a wildcard never matches the apex domain', async (t) => {
    t.equal(patternMatches(pattern('https://*.example.com'), o('https://example.com')), false)
  })

  t.test('a wildcard never matches by bare suffix or prefix', async (t) => {
    const p = pattern('https://*.example.com')
    for (const value of ['https://evilexample.com', 'https://a.evilexample.com', 'https://a.example.com.evil.net', 'https://example.com.evil.net']) {
      t.equal(patternMatches(p, o(value)), false, value)
    }
  })

  t.test('a wildcard only covers well-formed lower-case labels', async (t) => {
    const p = pattern('https://*.example.com')
    for (const value of ['https://A.example.com', 'https://a..example.com', 'https://-a.example.com', 'https://a_b!.example.com', `https://${'a'.repeat(64)}.example.com`]) {
      t.equal(patternMatches(p, o(value)), false, value)
    }
  })

  t.test('a pattern never crosses schemes', async (t) => {
    t.equal(patternMatches(pattern('https://*.example.com'), o('http://a.example.com')), false)
    t.equal(patternMatches(pattern('http://localhost:*'), o('https://localhost:3000')), false)
  })

  t.test('a wildcard without a port only covers the default port', async (t) => {
    const p = pattern('https://*.example.com')
    t.equal(patternMatches(p, o('https://a.example.com:8443')), false)
    t.equal(parseRequestOrigin('https://a.example.com:443'), undefined, 'the default port written out is not a serialized origin at all')
  })

  t.test('a wildcard with a port covers only that port', async (t) => {
    const p = pattern('https://*.example.com:8443')
    t.equal(patternMatches(p, o('https://a.example.com:8443')), true)
    t.equal(patternMatches(p, o('https://a.example.com')), false)
    t.equal(patternMatches(p, o('https://a.example.com:9443')), false)
  })

  t.test('":*" covers any port and no port on exactly that host', async (t) => {
    const p = pattern('http://localhost:*')
    for (const value of ['http://localhost', 'http://localhost:3000', 'http://localhost:5173', 'http://localhost:65535']) {
      t.equal(patternMatches(p, o(value)), true, value)
    }
    for (const value of ['http://localhost.evil.com', 'http://localhost.evil.com:3000', 'http://evil-localhost:3000', 'http://LOCALHOST:3000', 'http://127.0.0.1:3000']) {
      t.equal(patternMatches(p, o(value)), false, value)
    }
  })

  t.test('a wildcard with ":*" covers subdomains on any port', async (t) => {
    const p = pattern('https://*.example.com:*')
    t.equal(patternMatches(p, o('https://a.example.com')), true)
    t.equal(patternMatches(p, o('https://a.example.com:8443')), true)
    t.equal(patternMatches(p, o('https://example.com:8443')), false)
  })

  // A `:*` pattern must not see ports that no browser serializes: they are not origins at all.
  t.test('":*" never matches a default port written out, a leading zero or an impossible port', async (t) => {
    for (const value of ['http://localhost:80', 'https://a.example.com:443', 'http://localhost:03000', 'http://localhost:99999', 'http://localhost:0']) {
      t.equal(parseRequestOrigin(value), undefined, `${value} is not a serialized origin`)
    }
    t.same(parseRequestOrigin('http://localhost:8080'), { scheme: 'http', host: 'localhost', port: '8080' })
    t.same(parseRequestOrigin('https://a.example.com:80'), { scheme: 'https', host: 'a.example.com', port: '80' }, 'port 80 is not https\'s default')
  })
})

t.test('isLoopbackHost', async (t) => {
  t.test('localhost, *.localhost, 127.0.0.0/8 and [::1] are loopback', async (t) => {
    for (const host of ['localhost', 'app.localhost', '127.0.0.1', '127.1.2.3', '127.255.255.255', '[::1]']) {
      t.equal(isLoopbackHost(host), true, host)
    }
  })

  t.test('other names and addresses are not loopback', async (t) => {
    for (const host of ['example.com', 'localhost.evil.com', 'evillocalhost', '127.0.0.1.evil.com', '128.0.0.1', '10.0.0.1', '[::2]', '0.0.0.0']) {
      t.equal(isLoopbackHost(host), false, host)
    }
  })
})

t.test('entries are refused unless written as browsers serialize them (WHATWG URL host serialization)', async (t) => {
  refuses(t, 'http://127.1', /they send "127\.0\.0\.1"/)
  refuses(t, 'http://0x7f.0.0.1:3000', /they send "127\.0\.0\.1"/)
  refuses(t, 'http://[0:0:0:0:0:0:0:1]:3000', /they send "\[::1\]"/)
  refuses(t, 'https://bücher.example', /they send "xn--bcher-kva\.example"/)
  refuses(t, 'https://*.bücher.example', /they send "xn--bcher-kva\.example"/)
  refuses(t, 'https://*.127.0.0.1', /invalid host "127\.0\.0\.1" after "\*\."/)
  t.equal(parseOriginEntry('https://xn--bcher-kva.example').ok, true)
})
