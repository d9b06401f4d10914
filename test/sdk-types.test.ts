import { describe, expectTypeOf, it } from 'vitest'
import { Extension, HttpError, param, type CommandRequest, type ExtensionHost, type Params } from '../src/sdk/index.ts'

class Calc extends Extension {
  static override commands = {
    add: { params: { a: param.integer(), b: param.integer({ default: 5 }), tag: param.string({ optional: true }) } },
    pick: { params: { colour: param.enum(['red', 'green']), list: param.array(param.number()) }, methods: ['POST'] },
  }
  add({ a, b }: Params<typeof Calc.commands.add>) { return { sum: a + b } }
}

describe('SDK types', () => {
  it('Params gives each declared parameter its type; optional ones without a default may be absent', () => {
    expectTypeOf<Params<typeof Calc.commands.add>>().toEqualTypeOf<{ a: number; b: number } & { tag?: string }>()
    expectTypeOf<Params<typeof Calc.commands.pick>['colour']>().toEqualTypeOf<'red' | 'green'>()
    expectTypeOf<Params<typeof Calc.commands.pick>['list']>().toEqualTypeOf<number[]>()
  })

  it('an extension sees its host handle and a plain-data request', () => {
    expectTypeOf<Calc['host']>().toEqualTypeOf<ExtensionHost>()
    expectTypeOf<CommandRequest['signal']>().toEqualTypeOf<AbortSignal>()
    expectTypeOf<CommandRequest['rawBody']>().toEqualTypeOf<Uint8Array>()
  })

  it('HttpError carries status, code and data', () => {
    expectTypeOf(new HttpError(400, 'x')).toHaveProperty('status').toEqualTypeOf<number>()
    expectTypeOf(new HttpError(400, 'x')).toHaveProperty('code').toEqualTypeOf<string>()
  })
})
