import { readFileSync } from 'node:fs'

/** `Resident/<version>`: SERVER_SOFTWARE for CGI programs. Read once (src/ and dist/ are both two levels down). */
export const SERVER_SOFTWARE = `Resident/${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}`
