import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { Extension, HttpError, param, type Params } from 'resident-host'

// marked is quadratic on some inputs (60 KB of '!*a' took 44 s) and overflows its stack on deep
// nesting ('>' × 2000). So it runs in a worker thread: the host's event loop never waits for a
// render, a render past RENDER_MS is ended by terminating the worker, and a stack overflow is the
// worker's. Raw HTML in the input is escaped, never passed through, and links keep only safe schemes.
const RENDER_MS = 2000
const RENDERER = `
const { parentPort, workerData } = require('node:worker_threads')
const escape = (s) => s.replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';')
// A link or image may point at the web or a mail address, or be relative; 'javascript:',
// 'data:' and the rest are dropped (browsers ignore control characters and case in a scheme).
const SCHEME = /^([a-z][a-z0-9+.-]*):/
const safeUrl = (href) => {
  const m = SCHEME.exec(String(href).replace(/[\\u0000-\\u0020]/g, '').toLowerCase())
  return m === null || m[1] === 'http' || m[1] === 'https' || m[1] === 'mailto'
}
const walkTokens = (token) => {
  if ((token.type === 'link' || token.type === 'image') && !safeUrl(token.href)) token.href = '#'
}
const ready = import(workerData.marked).then(({ Marked }) => new Marked({ renderer: { html: (token) => escape(token.text) }, walkTokens }))
parentPort.on('message', ({ id, text }) => {
  ready.then((marked) => parentPort.postMessage({ id, html: marked.parse(text, { async: false }) }))
    .catch((e) => parentPort.postMessage({ id, error: String(e && e.message || e) }))
})`

// The rendered page may hold links and images from the input, never script: 'sandbox' gives it an
// origin of its own, so even a script that got through could not reach this host's pages.
const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
}

interface Pending { resolve: (html: string) => void; reject: (e: Error) => void }

/**
 * Uses a real npm package. Packages stay outside the extension's bundle: `marked` loads through
 * Node, here inside the renderer's worker thread.
 */
export default class Markdown extends Extension {
  static override commands = {
    render: { params: { text: param.string({ default: '# Hello\n\nFrom **Resident**.', maxLength: 50_000 }) }, methods: ['GET', 'POST'] },
  }

  #renderer: Renderer | null = null

  async render({ text }: Params<typeof Markdown.commands.render>) {
    const renderer = this.#renderer ??= startRenderer(() => { if (this.#renderer === renderer) this.#renderer = null })
    return new Response(await renderer.render(text), { headers: HEADERS })
  }

  override async dispose() {
    await this.#renderer?.worker.terminate()
  }
}

interface Renderer { worker: Worker; render(text: string): Promise<string> }

/** One worker and the renders waiting on it; `gone` is called once the worker has exited. */
function startRenderer(gone: () => void): Renderer {
  const worker = new Worker(RENDERER, { eval: true, workerData: { marked: pathToFileURL(require.resolve('marked')).href } })
  worker.unref()
  const pending = new Map<number, Pending>()
  let next = 0
  worker.on('message', ({ id, html, error }: { id: number; html?: string; error?: string }) => {
    const p = pending.get(id)
    pending.delete(id)
    if (error !== undefined) p?.reject(new HttpError(422, `the markdown could not be rendered: ${error.slice(0, 120)}`, { code: 'RENDER_FAILED' }))
    else p?.resolve(html!)
  })
  worker.on('exit', () => {
    gone()
    for (const p of pending.values()) p.reject(new HttpError(422, 'the markdown renderer stopped before it finished', { code: 'RENDER_FAILED' }))
    pending.clear()
  })
  return {
    worker,
    render: (text) => new Promise<string>((resolve, reject) => {
      const id = next++
      const timer = setTimeout(() => {
        // Ends this render and those queued behind it; the next request starts a fresh worker.
        pending.delete(id)
        gone()
        void worker.terminate()
        reject(new HttpError(422, `the markdown took longer than ${RENDER_MS} ms to render`, { code: 'RENDER_TOO_SLOW' }))
      }, RENDER_MS)
      pending.set(id, {
        resolve: (html) => { clearTimeout(timer); resolve(html) },
        reject: (e) => { clearTimeout(timer); reject(e) },
      })
      worker.postMessage({ id, text })
    }),
  }
}
