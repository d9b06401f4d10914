import { Extension } from 'resident-host'

/** State that lives as long as the extension stays resident. */
export default class Counter extends Extension {
  #count = 0

  increment() {
    this.#count++
    return { count: this.#count }
  }

  value() {
    return { count: this.#count }
  }
}
