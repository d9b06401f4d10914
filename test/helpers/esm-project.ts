import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

function write(root: string, files: Record<string, string>): void {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
    writeFileSync(path.join(root, file), text)
  }
}

/** A project outside the checkout: its own node_modules with a CommonJS and an ESM-only package. */
export function esmProject(): { dir: string; files: Record<string, string> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-esm-'))
  const files: Record<string, string> = {
    'node_modules/cjs-pkg/package.json': JSON.stringify({ name: 'cjs-pkg', main: 'main.js' }),
    'node_modules/cjs-pkg/main.js': 'exports.twice = (x) => x * 2\nexports.kind = "cjs"\n',
    // ESM only: no "require" condition, top-level await of its own, and a JSON subpath.
    'node_modules/esm-pkg/package.json': JSON.stringify({
      name: 'esm-pkg', type: 'module',
      exports: { '.': { import: './index.js' }, './data.json': './data.json' },
    }),
    'node_modules/esm-pkg/index.js': 'export const thrice = (x) => x * 3\nexport default await Promise.resolve("esm-default")\n',
    'node_modules/esm-pkg/data.json': '{ "fromPackage": true }\n',
    'extensions/all/index.ts': `import { Extension } from 'resident-host'
import { createHash } from 'node:crypto'
import cjsDefault, { twice } from 'cjs-pkg'
import esmDefault, { thrice } from 'esm-pkg'
import pkgData from 'esm-pkg/data.json' with { type: 'json' }
import local from './data/settings.json' with { type: 'json' }
import { helperMeta, ready } from './lib/helper.ts'

const started = await Promise.resolve('top-level await in the entry')

export default class All extends Extension {
  async everything() {
    const crypto = await import('node:crypto')
    const cjs = await import('cjs-pkg')
    const esm = await import('esm-pkg')
    const own = await import('./lib/helper.ts')
    const name = 'cjs-' + 'pkg'
    const computed = await import(name)
    const json = await import('./data/settings.json', { with: { type: 'json' } })
    return {
      builtin: createHash('sha1').update('x').digest('hex') === crypto.createHash('sha1').update('x').digest('hex'),
      cjs: [twice(2), cjsDefault.kind, cjs.twice(3), computed.kind],
      esm: [thrice(2), esmDefault, esm.default, esm.thrice(3)],
      own: own.ready === ready,
      json: [pkgData.fromPackage, local.answer, json.default.answer],
      tla: [started, ready],
      meta: {
        url: import.meta.url, filename: import.meta.filename, dirname: import.meta.dirname,
        resolveRelative: import.meta.resolve('./lib/helper.ts'),
        resolveCjs: import.meta.resolve('cjs-pkg'),
        resolveEsm: import.meta.resolve('esm-pkg'),
        resolveBuiltin: import.meta.resolve('fs'),
      },
      helperMeta,
    }
  }
}
`,
    'extensions/all/lib/helper.ts': `export const ready = await new Promise<string>((r) => setTimeout(() => r('top-level await in an import'), 5))
export const helperMeta = { url: import.meta.url, dirname: import.meta.dirname }
`,
    'extensions/all/data/settings.json': '{ "answer": 42 }\n',
  }
  write(dir, files)
  mkdirSync(path.join(dir, 'filters'))
  return { dir, files }
}

