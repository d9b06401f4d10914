import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { isModuleName } from '../config/names.ts'
import { UsageError } from './args.ts'
import { extensionFiles, filterFiles, projectFiles } from './templates.ts'

// `resident new <dir>`, `resident new extension <name>`, `resident new filter <name>`. Never
// overwrites: anything already there is a usage error (exit 2) naming it, and nothing is written.

interface OwnPackage { version: string; devDependencies: Record<string, string> }

function ownPackage(): OwnPackage {
  return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as OwnPackage
}

function writeAll(root: string, files: Record<string, string>): string[] {
  const taken = Object.keys(files).filter((f) => existsSync(path.join(root, f)))
  if (taken.length > 0) throw new UsageError(`will not overwrite ${taken.map((f) => path.join(root, f)).join(', ')}: nothing was written`)
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
    writeFileSync(path.join(root, file), text, { flag: 'wx' })
  }
  return Object.keys(files)
}

export function runNew(args: string[], o: { sdk?: string; cwd: string }): string {
  const [first, second, ...rest] = args
  if (first === undefined || rest.length > 0) throw new UsageError('usage: resident new <dir> | resident new extension <name> | resident new filter <name>')
  if ((first === 'extension' || first === 'filter') && second !== undefined) {
    if (!isModuleName(second)) throw new UsageError(`"${second}" is not a ${first} name: lower-case letters, digits and hyphens, starting with a letter or digit`)
    if (!existsSync(path.join(o.cwd, 'package.json'))) throw new UsageError(`no package.json in ${o.cwd}: run "resident new ${first} ${second}" in a project made by "resident new <dir>"`)
    const written = writeAll(o.cwd, first === 'extension' ? extensionFiles(second) : filterFiles(second))
    return `added ${written.join(' and ')}\n` + (first === 'extension' ? `npm run dev serves it at /${second}/greet\n` : 'resident dev loads it; it runs on every request\n')
  }
  if (second !== undefined) throw new UsageError(`unexpected "${second}": usage: resident new <dir> | resident new extension <name> | resident new filter <name>`)
  const dir = path.resolve(o.cwd, first)
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new UsageError(`${dir} is not empty: will not overwrite anything there; choose a new folder`)
  const name = path.basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+/, '') || 'resident-extensions'
  const own = ownPackage()
  const files = projectFiles(name, {
    sdk: o.sdk ?? `^${own.version}`,
    typescript: own.devDependencies.typescript ?? 'latest',
    vitest: own.devDependencies.vitest ?? 'latest',
    typesNode: own.devDependencies['@types/node'] ?? 'latest',
  })
  mkdirSync(dir, { recursive: true })
  writeAll(dir, files)
  const rel = path.relative(o.cwd, dir) || '.'
  return `made ${rel}: ${Object.keys(files).join(', ')}\n\n  cd ${rel}\n  npm install\n  npm run dev     # http://127.0.0.1:3000/hello/greet?name=you\n  npm test\n`
}
