// The demo page. The same file runs in two roles: the page a person opens (an origin the policy
// allows) and, in an iframe loaded from a second origin (`?embedded`), the same call from an origin
// the policy does not allow. Data from the API is only ever set as text, never as HTML.
const config = await (await fetch('/config.json')).json()
const embedded = new URLSearchParams(location.search).has('embedded')

function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  node.append(...children)
  return node
}

function heading (allowed) {
  return el('h2', {}, 'From ', el('code', {}, location.origin), ' ',
    el('span', { class: `badge ${allowed ? 'yes' : 'no'}` }, allowed ? 'allowed by the policy' : 'not in the policy'))
}

/** The redacted text with each marker highlighted. */
function redacted (text) {
  const p = el('p', { class: 'redacted', 'data-testid': 'redacted' })
  for (const part of text.split(/(\[[A-Z_]+_\d+\])/)) p.append(/^\[[A-Z_]+_\d+\]$/.test(part) ? el('mark', {}, part) : part)
  return p
}

async function call (text) {
  try {
    const res = await fetch(`${config.sidecar}/process/text`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: [text] })
    })
    return { ok: true, status: res.status, requestId: res.headers.get('x-request-id'), body: await res.json().catch(() => null) }
  } catch (err) {
    // All a page ever learns about a CORS failure: a TypeError with no reason in it.
    return { ok: false, error: String(err) }
  }
}

async function run (panel, text, allowed) {
  panel.dataset.state = 'pending'
  panel.replaceChildren(heading(allowed), el('p', { class: 'muted' }, 'Sending…'))
  const r = await call(text)
  const out = [heading(allowed)]
  if (r.ok && r.status === 200) {
    const item = r.body[0]
    out.push(
      el('p', { class: 'status ok' }, `✓ ${r.status} OK: the preflight was allowed, then the POST forwarded`),
      el('p', { class: 'muted' }, 'x-request-id (an exposed response header): ', el('code', {}, r.requestId ?? '')),
      el('h3', {}, 'Redacted text'), redacted(item.processed_text),
      el('h3', {}, `Entities (${item.entities.length})`),
      el('table', {}, el('tr', {}, el('th', {}, 'marker'), el('th', {}, 'original')),
        ...item.entities.map((e) => el('tr', {}, el('td', {}, e.processed_text), el('td', {}, e.text)))))
    panel.dataset.state = 'ok'
  } else if (r.ok) {
    // An error the sidecar generated itself: it carries CORS headers, so the page can read it.
    const error = r.body?.error ?? {}
    out.push(el('p', { class: 'status no' }, `✗ ${r.status} ${error.code ?? ''}`), el('p', {}, error.message ?? ''))
    panel.dataset.state = 'error'
  } else {
    const why = await (await fetch('/explain')).json()
    out.push(
      el('p', { class: 'status no' }, `✗ fetch() rejected: ${r.error}`),
      el('p', { class: 'muted' }, why.verdict === 'denied'
        ? 'That is all the browser tells the page. The sidecar refused the preflight (403) and forwarded nothing. Its explain command, run on the same policy, says why:'
        : 'That is all the browser tells the page. The policy allows this origin (explain below), so is the sidecar running?'),
      el('ul', { class: 'why', 'data-testid': 'why' }, ...why.failures.map((f) => el('li', {}, el('code', {}, f.reason), `: ${f.detail}`))),
      ...why.hints.map((h) => el('p', { class: 'hint' }, `Hint: ${h}`)),
      el('details', {}, el('summary', {}, `npm run explain -- --config examples/demo/policy.yaml --origin ${location.origin} --method POST --header content-type`),
        el('pre', {}, why.text)))
    panel.dataset.state = 'failed'
  }
  panel.replaceChildren(...out)
}

if (embedded) {
  const panel = document.getElementById('embedded-panel')
  document.documentElement.classList.add('embedded')
  document.getElementById('embedded').hidden = false
  panel.replaceChildren(heading(false), el('p', { class: 'muted' }, 'Waiting for the page to send…'))
  // Only the demo page may ask this frame to call the sidecar.
  window.addEventListener('message', (event) => {
    if (event.origin === config.appOrigin && event.data?.type === 'redact') void run(panel, event.data.text, false)
  })
} else {
  document.getElementById('page').hidden = false
  document.getElementById('sidecar').textContent = config.sidecar
  const own = document.getElementById('own')
  const frame = document.getElementById('other')
  frame.src = `${config.otherOrigin}/?embedded`
  own.replaceChildren(heading(true), el('p', { class: 'muted' }, 'Press the button.'))
  document.getElementById('form').addEventListener('submit', (event) => {
    event.preventDefault()
    const text = document.getElementById('text').value
    void run(own, text, true)
    frame.contentWindow.postMessage({ type: 'redact', text }, config.otherOrigin)
  })
}
