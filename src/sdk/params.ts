// The parse map's parameter language: a small typed DSL of plain data. Plain data because a parse
// map must cross into workers and processes unchanged; typed because `Params<typeof spec>` gives the
// command's argument its type. See README "Parse maps" for why not TypeBox or JSON Schema.

export type ParamType = 'integer' | 'number' | 'string' | 'boolean' | 'enum' | 'array'

interface Base<T> {
  /** Default when the parameter is absent; makes it optional. */
  default?: T
  /** Optional without a default: absent stays `undefined`. */
  optional?: boolean
  description?: string
}
export interface IntegerParam extends Base<number> { type: 'integer'; min?: number; max?: number }
export interface NumberParam extends Base<number> { type: 'number'; min?: number; max?: number }
export interface StringParam extends Base<string> { type: 'string'; minLength?: number; maxLength?: number; pattern?: string }
export interface BooleanParam extends Base<boolean> { type: 'boolean' }
export interface EnumParam<V extends string = string> extends Base<V> { type: 'enum'; values: readonly V[] }
export interface ArrayParam<I extends ScalarParam = ScalarParam> extends Base<ParamValue<I>[]> {
  type: 'array'; items: I; minItems?: number; maxItems?: number
}
export type ScalarParam = IntegerParam | NumberParam | StringParam | BooleanParam | EnumParam
export type ParamSpec = ScalarParam | ArrayParam

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS'

/** One entry of `static commands`: what a command accepts. */
export interface CommandSpec {
  params?: Record<string, ParamSpec>
  /** Allowed HTTP methods (HttpMethod names; checked at load). Default: GET, HEAD and POST; GET implies HEAD. */
  methods?: readonly string[]
  /** Content types accepted as raw bytes besides JSON, urlencoded and text. */
  accepts?: readonly string[]
  description?: string
}
export type CommandMap = Record<string, CommandSpec>

export type ParamValue<P> =
  P extends IntegerParam | NumberParam ? number :
  P extends StringParam ? string :
  P extends BooleanParam ? boolean :
  P extends EnumParam<infer V> ? V :
  P extends ArrayParam<infer I> ? ParamValue<I>[] : unknown

type IsOptional<P> = P extends { default: unknown } ? false : P extends { optional: true } ? true : false

/** The argument type of a command declared with `spec`. @example add({ a, b }: Params<typeof Calc.commands.add>) */
export type Params<C extends CommandSpec> = C['params'] extends Record<string, ParamSpec>
  ? { [K in keyof C['params'] as IsOptional<C['params'][K]> extends true ? never : K]: ParamValue<C['params'][K]> } &
    { [K in keyof C['params'] as IsOptional<C['params'][K]> extends true ? K : never]?: ParamValue<C['params'][K]> }
  : Record<string, unknown>

type Opts<P> = Omit<P, 'type'>

/**
 * Builders for parse-map parameters; each returns plain data.
 * @example static commands = { add: { params: { a: param.integer(), b: param.integer({ default: 5 }) } } }
 */
export const param = {
  integer: <const O extends Opts<IntegerParam>>(o?: O) => ({ ...o, type: 'integer' }) as IntegerParam & O,
  number: <const O extends Opts<NumberParam>>(o?: O) => ({ ...o, type: 'number' }) as NumberParam & O,
  string: <const O extends Opts<StringParam>>(o?: O) => ({ ...o, type: 'string' }) as StringParam & O,
  boolean: <const O extends Opts<BooleanParam>>(o?: O) => ({ ...o, type: 'boolean' }) as BooleanParam & O,
  enum: <const V extends string, const O extends Opts<Omit<EnumParam<V>, 'values'>>>(values: readonly V[], o?: O) =>
    ({ ...o, type: 'enum', values }) as EnumParam<V> & O,
  array: <I extends ScalarParam, const O extends Opts<Omit<ArrayParam<I>, 'items'>>>(items: I, o?: O) =>
    ({ ...o, type: 'array', items }) as ArrayParam<I> & O,
}
