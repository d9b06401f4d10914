import { behaviourSuite } from './behaviour.ts'

// What the cgi mode teaches: a process serves one request. The skips are that lesson.
behaviourSuite('cgi', {
  skip: {
    state: 'a CGI process serves one request: no state survives it',
    lifecycle: "init() and dispose('shutdown') run in each request's own process; an unload has no instance left to dispose",
  },
})
