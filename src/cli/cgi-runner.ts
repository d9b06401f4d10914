// The entry of the bundled CGI runner (see modes/cgi/runner-bundle.ts): one CommonJS file with
// everything `resident cgi` needs, so a process per request loads one file, not the module graph.
import { main } from './cgi.ts'

void main(process.argv.slice(2))
