// Names are the only thing a URL contributes to a file lookup, and this pattern leaves no room for
// `..`, separators, NUL or encodings. Anything else is simply not an extension or a filter.
export const MODULE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/

export function isModuleName(name: string): boolean {
  return MODULE_NAME.test(name)
}
