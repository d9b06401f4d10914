import { Extension, param, type Params } from 'resident-host'
import { marked } from 'marked'

/**
 * Uses a real npm package. Packages stay outside the extension's bundle: `marked` loads once
 * through Node and is shared by every generation and every extension that imports it.
 */
export default class Markdown extends Extension {
  static override commands = {
    render: { params: { text: param.string({ default: '# Hello\n\nFrom **Resident**.', maxLength: 100_000 }) }, methods: ['GET', 'POST'] },
  }

  async render({ text }: Params<typeof Markdown.commands.render>) {
    const html = await marked.parse(text)
    return new Response(html, { headers: { 'content-type': 'text/html; charset=utf-8' } })
  }
}
