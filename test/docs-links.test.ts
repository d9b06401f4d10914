import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { marked, type Token, type Tokens } from 'marked'
import { describe, expect, it } from 'vitest'

// The documentation must stand alone in a clone: every link in README.md and docs/ resolves to a
// file of this repository, and every #anchor to a heading of the file it names.

const root = path.resolve(import.meta.dirname, '..')

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? markdownFiles(p) : e.name.endsWith('.md') ? [p] : []
  })
}

function walk(tokens: Token[], visit: (t: Token) => void): void {
  for (const t of tokens) {
    visit(t)
    const nested = t as { tokens?: Token[]; items?: Token[]; header?: Array<{ tokens: Token[] }>; rows?: Array<Array<{ tokens: Token[] }>> }
    if (nested.tokens) walk(nested.tokens, visit)
    if (nested.items) walk(nested.items, visit)
    for (const cell of nested.header ?? []) walk(cell.tokens, visit)
    for (const row of nested.rows ?? []) for (const cell of row) walk(cell.tokens, visit)
  }
}

/** The anchor a heading gets when the markdown is shown on a forge (lower case, punctuation dropped, spaces to hyphens, repeats numbered). */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  walk(marked.lexer(markdown), (t) => {
    if (t.type !== 'heading') return
    const text = plain((t as Tokens.Heading).tokens)
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
  })
  for (const m of markdown.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(m[1]!)
  return anchors
}

function plain(tokens: Token[]): string {
  return tokens.map((t) => {
    const nested = (t as { tokens?: Token[] }).tokens
    if (nested) return plain(nested)
    return t.type === 'codespan' ? (t as Tokens.Codespan).text : (t as { text?: string }).text ?? t.raw
  }).join('')
}

function linksOf(markdown: string): string[] {
  const links: string[] = []
  walk(marked.lexer(markdown), (t) => {
    if (t.type === 'link' || t.type === 'image') links.push((t as Tokens.Link).href)
  })
  return links
}

/** Every broken link of one markdown file, as "target: why". */
export function brokenLinks(file: string, text = readFileSync(file, 'utf8')): string[] {
  const problems: string[] = []
  for (const href of linksOf(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) {
      problems.push(`${href}: points outside the repository`)
      continue
    }
    const [target = '', anchor] = href.split('#', 2) as [string, string | undefined]
    const resolved = target === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(target))
    const rel = path.relative(root, resolved)
    if (rel.startsWith('..') || path.isAbsolute(rel)) { problems.push(`${href}: leaves the repository`); continue }
    if (!existsSync(resolved)) { problems.push(`${href}: no such file`); continue }
    if (anchor !== undefined) {
      if (!statSync(resolved).isFile() || !resolved.endsWith('.md')) { problems.push(`${href}: an anchor into something that is not markdown`); continue }
      if (!anchorsOf(readFileSync(resolved, 'utf8')).has(decodeURIComponent(anchor))) problems.push(`${href}: no heading #${anchor} in ${path.relative(root, resolved)}`)
    }
  }
  return problems
}

describe('documentation links', () => {
  const files = [path.join(root, 'README.md'), ...markdownFiles(path.join(root, 'docs'))]

  it.each(files.map((f) => [path.relative(root, f), f]))('%s links only to files and headings of this repository', (_name, file) => {
    expect(brokenLinks(file)).toEqual([])
  })

  it('the check itself finds a missing file, a missing heading and an outside link', () => {
    expect(anchorsOf('# A `b` c!\n## A b c\n## Same\n## Same')).toEqual(new Set(['a-b-c', 'a-b-c-1', 'same', 'same-1']))
    expect(linksOf('[x](a.md) `[y](b.md)`\n\n```\n[z](c.md)\n```\n')).toEqual(['a.md'])
    const page = path.join(root, 'docs/page.md')
    expect(brokenLinks(page, '[ok](README.md#resident-documentation) [a](missing.md) [b](README.md#nowhere) [c](https://example.org/) [d](../../outside.md)')).toEqual([
      'missing.md: no such file',
      'README.md#nowhere: no heading #nowhere in docs/README.md',
      'https://example.org/: points outside the repository',
      '../../outside.md: leaves the repository',
    ])
  })
})
