// The files `resident new` writes. Kept small: an author reads all of them on the first day.

export interface ProjectVersions { sdk: string; typescript: string; vitest: string; typesNode: string }

export function projectFiles(name: string, v: ProjectVersions): Record<string, string> {
  return {
    'package.json': JSON.stringify({
      name,
      version: '0.1.0',
      private: true,
      type: 'module',
      scripts: {
        dev: 'resident dev',
        start: 'resident serve',
        test: 'tsc --noEmit && vitest run',
      },
      dependencies: { 'resident-host': v.sdk },
      devDependencies: { '@types/node': v.typesNode, typescript: v.typescript, vitest: v.vitest },
    }, null, 2) + '\n',
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        allowImportingTsExtensions: true,
        verbatimModuleSyntax: true,
        isolatedModules: true,
        noImplicitOverride: true,
        skipLibCheck: true,
        types: ['node'],
      },
      include: ['extensions', 'filters', 'test'],
    }, null, 2) + '\n',
    '.gitignore': 'node_modules/\n',
    'README.md': `# ${name}

Extensions for [Resident](https://www.npmjs.com/package/resident-host), the extension host for Node.js.

\`\`\`sh
npm install
npm run dev      # serves extensions/ at http://127.0.0.1:3000 and reloads on save
npm test         # type check, then the tests in test/
\`\`\`

- \`extensions/hello.ts\` answers \`/hello/greet?name=you\`; each public method is a command.
- \`test/hello.test.ts\` runs it through a real host without a port (\`resident-host/testing\`).
- \`npx resident new extension <name>\` and \`npx resident new filter <name>\` add a file and its test.
`,
    ...extensionFiles('hello'),
  }
}

// Written as a call so that the layer check (which reads this file's import lines) skips it.
const fromFile = (p: string) => `from '${p}'`

const className = (name: string) => name.split('-').map((p) => p[0]!.toUpperCase() + p.slice(1)).join('').replace(/^(\d)/, 'X$1')

export function extensionFiles(name: string): Record<string, string> {
  const Class = className(name)
  return {
    [`extensions/${name}.ts`]: `import { Extension, param, type Params } from 'resident-host'

/** Served at /${name}/<command>: each public method is a command. */
export default class ${Class} extends Extension {
  static override commands = {
    greet: { params: { name: param.string({ default: 'world', maxLength: 100 }) } },
  }

  greet({ name }: Params<typeof ${Class}.commands.greet>) {
    return { hello: name }
  }
}
`,
    [`test/${name}.test.ts`]: `import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createExtension, createTestHost, type TestHost } from 'resident-host/testing'
import ${Class} ${fromFile(`../extensions/${name}.ts`)}

describe('${name}', () => {
  let host: TestHost
  beforeAll(async () => { host = await createTestHost({ extensions: { '${name}': 'extensions/${name}.ts' } }) })
  afterAll(() => host.close())

  it('greets through the host (parse map, dispatcher, JSON)', async () => {
    const r = await host.inject('/${name}/greet?name=you')
    expect(r.statusCode).toBe(200)
    expect(r.json()).toEqual({ hello: 'you' })
  })

  it('refuses a name that is too long', async () => {
    const r = await host.inject('/${name}/greet?name=' + 'x'.repeat(101))
    expect(r.statusCode).toBe(400)
  })

  it('greets as a plain object too', async () => {
    const { extension, close } = await createExtension(${Class})
    expect(extension.greet({ name: 'unit' })).toEqual({ hello: 'unit' })
    await close()
  })
})
`,
  }
}

export function filterFiles(name: string): Record<string, string> {
  const Class = className(name)
  return {
    [`filters/${name}.ts`]: `import { Filter, type FilterRequest, type FilterResponse } from 'resident-host'

/** Runs on every request: here it marks each response with a header. */
export default class ${Class} extends Filter {
  override onSendResponse(_request: FilterRequest, response: FilterResponse) {
    response.setHeader('x-${name}', 'on')
  }
}
`,
    [`test/${name}.filter.test.ts`]: `import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestHost, type TestHost } from 'resident-host/testing'

describe('filter ${name}', () => {
  let host: TestHost
  beforeAll(async () => { host = await createTestHost({ extensions: 'extensions', filters: { '${name}': 'filters/${name}.ts' } }) })
  afterAll(() => host.close())

  it('marks every response, errors included', async () => {
    const r = await host.inject('/no-such-extension/x')
    expect(r.statusCode).toBe(404)
    expect(r.headers['x-${name}']).toBe('on')
  })
})
`,
  }
}
