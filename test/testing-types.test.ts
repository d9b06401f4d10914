import { describe, expectTypeOf, it } from 'vitest'
import type { ExtensionHost, UnloadReason } from '../src/sdk/index.ts'
import { createExtension, createTestHost, type InjectResponse, type LogLine, type TestHost } from '../src/testing/index.ts'
import Hello from './fixtures/kit/extensions/hello.ts'

describe('testing kit types', () => {
  it('createTestHost resolves to a TestHost whose inject answers status, headers, text and json', () => {
    expectTypeOf(createTestHost).returns.resolves.toEqualTypeOf<TestHost>()
    expectTypeOf<TestHost['inject']>().parameter(0).toEqualTypeOf<string | import('../src/testing/index.ts').InjectRequest>()
    expectTypeOf<InjectResponse['statusCode']>().toEqualTypeOf<number>()
    expectTypeOf<InjectResponse['body']>().toEqualTypeOf<string>()
    expectTypeOf<InjectResponse['json']>().returns.toEqualTypeOf<unknown>()
    expectTypeOf<ReturnType<InjectResponse['json']>>().toEqualTypeOf<unknown>()
    expectTypeOf<TestHost['logs']>().toEqualTypeOf<readonly LogLine[]>()
  })

  it('createExtension keeps the class: its commands are typed on the instance', () => {
    type T = Awaited<ReturnType<typeof createExtension<Hello>>>
    expectTypeOf<T['extension']>().toEqualTypeOf<Hello>()
    expectTypeOf<T['extension']['greet']>().returns.toEqualTypeOf<{ hello: string; greeting: {} | null }>()
    expectTypeOf<T['host']>().toEqualTypeOf<ExtensionHost>()
    expectTypeOf<T['close']>().parameter(0).toEqualTypeOf<UnloadReason | undefined>()
    // Only extension classes: a class not extending Extension is refused.
    // @ts-expect-error: not an Extension
    void createExtension(class Other { constructor(_host: ExtensionHost) {} })
  })
})
