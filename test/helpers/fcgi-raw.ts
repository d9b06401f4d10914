import net from 'node:net'
import { encodePairRecords } from '../../src/modes/fastcgi/pairs.ts'
import { decodeEndRequest, encodeBeginRequest, encodeRecord, RecordReader, Type, type FcgiRecord } from '../../src/modes/fastcgi/records.ts'

/** A FastCGI connection at the record level, for tests that need to send exactly what they mean. */
export class RawFcgi {
  readonly socket: net.Socket
  readonly records: FcgiRecord[] = []
  closed = false
  #reader = new RecordReader()
  #waiters: Array<() => void> = []

  private constructor(socket: net.Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      for (const r of this.#reader.push(d)) this.records.push({ ...r, content: Buffer.from(r.content) })
      this.#wake()
    })
    socket.on('close', () => { this.closed = true; this.#wake() })
    socket.on('error', () => {})
  }

  static connect(address: string): Promise<RawFcgi> {
    return new Promise((resolve, reject) => {
      const m = /^(.*):(\d+)$/.exec(address)
      const s = address.startsWith('unix:') ? net.connect(address.slice(5)) : net.connect(Number(m![2]), m![1]!.replace(/^\[|\]$/g, ''))
      s.once('connect', () => resolve(new RawFcgi(s)))
      s.once('error', reject)
    })
  }

  #wake(): void { for (const w of this.#waiters.splice(0)) w() }

  send(...bufs: Buffer[]): void { this.socket.write(Buffer.concat(bufs)) }

  begin(id: number, role = 1, keepConn = true): void { this.send(encodeBeginRequest(id, role, keepConn)) }
  params(id: number, pairs: Record<string, string>): void { this.send(...encodePairRecords(Type.PARAMS, id, pairs), encodeRecord(Type.PARAMS, id)) }
  stdin(id: number, body = ''): void {
    if (body) this.send(encodeRecord(Type.STDIN, id, Buffer.from(body)))
    this.send(encodeRecord(Type.STDIN, id))
  }

  /** Waits until `pred` holds over the records received (or the connection closed). */
  async until(pred: (records: FcgiRecord[]) => boolean, timeout = 10_000): Promise<void> {
    const end = Date.now() + timeout
    while (!pred(this.records)) {
      if (this.closed) throw new Error(`connection closed; records: ${JSON.stringify(this.records.map((r) => r.type))}`)
      if (Date.now() > end) throw new Error('timed out waiting for FastCGI records')
      await new Promise<void>((r) => { this.#waiters.push(r); setTimeout(r, 100) })
    }
  }

  /** Waits for END_REQUEST of `id`; returns its status and the STDOUT text before it. */
  async response(id: number): Promise<{ stdout: string; appStatus: number; protocolStatus: number }> {
    await this.until((rs) => rs.some((r) => r.type === Type.END_REQUEST && r.requestId === id))
    const mine = this.records.filter((r) => r.requestId === id)
    this.records.splice(0, this.records.length, ...this.records.filter((r) => r.requestId !== id))
    const end = decodeEndRequest(mine.find((r) => r.type === Type.END_REQUEST)!.content)
    return { stdout: Buffer.concat(mine.filter((r) => r.type === Type.STDOUT).map((r) => r.content)).toString(), ...end }
  }

  waitClosed(timeout = 10_000): Promise<void> {
    return this.until(() => false, timeout).catch((e: Error) => { if (!this.closed) throw e })
  }

  close(): void { this.socket.destroy() }
}

export function getParams(method: string, uri: string, extra: Record<string, string> = {}): Record<string, string> {
  const q = uri.indexOf('?')
  return {
    REQUEST_METHOD: method, REQUEST_URI: uri, QUERY_STRING: q < 0 ? '' : uri.slice(q + 1), SCRIPT_NAME: q < 0 ? uri : uri.slice(0, q),
    SERVER_PROTOCOL: 'HTTP/1.1', REMOTE_ADDR: '127.0.0.1', REMOTE_PORT: '5555', SERVER_ADDR: '127.0.0.1', SERVER_PORT: '80', HTTP_HOST: 'localhost', ...extra,
  }
}
