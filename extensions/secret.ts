import { Extension, type CommandRequest } from 'resident-host'

/** Protected by filters/basic-auth.ts: /secret/ answers only with valid credentials. */
export default class Secret extends Extension {
  index(_params: unknown, request: CommandRequest) {
    const user = (request.user as { name?: string } | undefined)?.name ?? 'nobody'
    return { message: `The secret is safe with you, ${user}.` }
  }
}
