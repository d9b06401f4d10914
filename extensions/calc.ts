import { Extension, HttpError, param, type Params } from 'resident-host'

/** The classic ISAPI parse-map example: typed, coerced, defaulted parameters. */
export default class Calc extends Extension {
  static override commands = {
    add: { params: { a: param.integer(), b: param.integer({ default: 5 }) } },
    div: { params: { a: param.number(), b: param.number() } },
  }

  add({ a, b }: Params<typeof Calc.commands.add>) {
    return { sum: a + b }
  }

  div({ a, b }: Params<typeof Calc.commands.div>) {
    if (b === 0) throw new HttpError(400, 'b must not be 0', { code: 'DIVISION_BY_ZERO' })
    return { quotient: a / b }
  }
}
