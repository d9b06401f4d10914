import { behaviourSuite } from './behaviour.ts'

behaviourSuite('inprocess')
