import { describe, expectTypeOf, it } from 'vitest'
import { ServerSentEvent, ndjson, sse, type FormattedStream } from '../src/sdk/index.ts'

describe('SDK stream helper types', () => {
  it('sse() and ndjson() keep the element type and stay async iterables', () => {
    async function* numbers() { yield 1 }
    expectTypeOf(sse(numbers())).toEqualTypeOf<FormattedStream<number>>()
    expectTypeOf(ndjson(numbers())).toMatchTypeOf<AsyncIterable<number>>()
    expectTypeOf(sse).parameter(1).toEqualTypeOf<{ keepAlive?: number } | undefined>()
  })

  it('ServerSentEvent takes data and the optional event fields', () => {
    expectTypeOf(new ServerSentEvent({ data: 1 }).event).toEqualTypeOf<string | undefined>()
    expectTypeOf<ConstructorParameters<typeof ServerSentEvent>[0]>().toEqualTypeOf<{ data: unknown; event?: string; id?: string; retry?: number }>()
  })
})
