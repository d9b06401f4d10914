/** One event as an EventSource delivers it. */
export interface SseMessage { event: string; data: string; id: string }

/**
 * Reads a text/event-stream body the way EventSource does (the HTML standard's parsing rules:
 * lines ending in CR, LF or CRLF; `field: value`; comments; an empty line dispatches), calling
 * `onComment` for comments such as keep-alives. Resolves when the body ends.
 */
export async function readEventStream(body: ReadableStream<Uint8Array>, on: { message(m: SseMessage): void | boolean; comment?(text: string): void }): Promise<void> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let data: string[] = []
  let event = ''
  let lastId = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += decoder.decode(value, { stream: true })
    const lines = buffer.split(/\r\n|\r|\n/)
    buffer = lines.pop()!
    for (const line of lines) {
      if (line === '') {
        if (data.length > 0) {
          const stop = on.message({ event: event || 'message', data: data.join('\n'), id: lastId })
          if (stop === true) { await reader.cancel(); return }
        }
        data = []
        event = ''
        continue
      }
      if (line.startsWith(':')) { on.comment?.(line.slice(1).trim()); continue }
      const colon = line.indexOf(':')
      const field = colon === -1 ? line : line.slice(0, colon)
      let val = colon === -1 ? '' : line.slice(colon + 1)
      if (val.startsWith(' ')) val = val.slice(1)
      if (field === 'data') data.push(val)
      else if (field === 'event') event = val
      else if (field === 'id') lastId = val
    }
  }
}

/** Reads an NDJSON body line by line as it arrives. */
export async function* ndjsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let nl: number
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        if (line.trim() !== '') yield JSON.parse(line)
      }
    }
    if (buffer.trim() !== '') yield JSON.parse(buffer)
  } finally {
    await reader.cancel().catch(() => undefined)
  }
}
