import { Extension, param, type Params } from 'resident-host'

/** The smallest extension: a greeting page at /hello/ and a JSON greeting at /hello/greet. */
export default class Hello extends Extension {
  static override commands = {
    greet: { params: { name: param.string({ default: 'world', maxLength: 100 }) } },
  }

  index() {
    return new Response(
      '<!doctype html><title>Hello</title><h1>Hello from Resident</h1><p>Try <a href="/hello/greet?name=you">/hello/greet?name=you</a>.</p>',
      { headers: { 'content-type': 'text/html; charset=utf-8' } },
    )
  }

  greet({ name }: Params<typeof Hello.commands.greet>) {
    return { hello: name }
  }
}
