// `resident-host/testing`: a real host without a port, and one extension with a real handle.
export { createTestHost } from './test-host.ts'
export type { InjectRequest, InjectResponse, TestHost, TestHostOptions } from './test-host.ts'
export { createExtension } from './extension.ts'
export type { CreateExtensionOptions, ExtensionUnderTest } from './extension.ts'
export type { LogLine } from './log-sink.ts'
