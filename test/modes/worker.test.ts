import { behaviourSuite } from './behaviour.ts'

behaviourSuite('worker')
