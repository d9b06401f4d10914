import { expect } from 'vitest'
import { waitFor } from '../helpers/poll.ts'
import { behaviourSuite } from './behaviour.ts'

/** The `<event> <generation>[ <reason>]` lines the probe wrote after `from` characters of the log. */
const linesAfter = (events: string, from: number) => events.slice(from).split('\n').filter(Boolean)

// What the cgi mode teaches: a process serves one request. The two behaviours it cannot show are
// tested as what it does instead, so the lesson the docs give is checked too.
behaviourSuite('cgi', {
  // A process per request: starting one can take over a second on a loaded machine.
  config: { requestTimeout: '8s' },
  instead: {
    state: {
      why: 'a CGI process serves one request, and its instance dies with it',
      title: 'every request starts from a fresh instance: the counter answers 1 each time, in sequence and side by side',
      async test({ inject }) {
        for (let i = 0; i < 3; i++) expect((await inject('/counter/increment')).json()).toEqual({ count: 1 })
        const together = await Promise.all([1, 2, 3].map(() => inject('/counter/increment')))
        expect(together.map((r) => r.json())).toEqual([{ count: 1 }, { count: 1 }, { count: 1 }])
        expect((await inject('/counter/value')).json()).toEqual({ count: 0 })
      },
    },
    lifecycle: {
      why: "init() and dispose('shutdown') run in each request's own process",
      title: "a load runs init() and dispose('shutdown') once to check the extension starts, then every request runs them again; an unload disposes nothing, and the next load is the next generation",
      async test({ inject, events }) {
        const unload = async () => (await inject({ method: 'POST', url: '/_resident/extensions/probe/unload', headers: { 'x-resident-admin': '1' } })).json()
        await unload()
        const start = events().length
        const after = (n: number, what: string) => waitFor(() => { const l = linesAfter(events(), start); return l.length >= n && l }, what)
        // The load's check (in a process of its own, before any request), then the request's own pair.
        await inject('/probe/text')
        const first = await after(4, 'the load\'s and the first request\'s init and dispose')
        const gen = Number(/^init (\d+)$/.exec(first[0]!)?.[1])
        expect(gen).toBeGreaterThan(0)
        const pair = (g: number) => [`init ${g}`, `dispose ${g} shutdown`]
        expect(first).toEqual([...pair(gen), ...pair(gen)])
        // A second request: a second instance of the same generation, set up and torn down again.
        await inject('/probe/text')
        await after(6, 'the second request\'s dispose')
        expect(await unload()).toMatchObject({ unloaded: true })
        // The next request loads the next generation: its check, then the request.
        await inject('/probe/text')
        const all = await after(10, 'the load and the request after the unload')
        // No dispose came from the unload itself (no instance was left to dispose): only the processes' own.
        expect(all).toEqual([...pair(gen), ...pair(gen), ...pair(gen), ...pair(gen + 1), ...pair(gen + 1)])
      },
    },
  },
})
