import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readCgroupMemory } from '../src/residency/memory.ts'

// Fixture trees laid out like /proc/self/cgroup and /sys/fs/cgroup (a v2 host is not available here).
let dir = ''
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = '' })

function tree(proc: string, files: Record<string, string>) {
  dir = mkdtempSync(path.join(tmpdir(), 'resident-cgroup-'))
  const root = path.join(dir, 'sys')
  for (const [f, v] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true })
    writeFileSync(path.join(root, f), v + '\n')
  }
  writeFileSync(path.join(dir, 'cgroup'), proc)
  return { procFile: path.join(dir, 'cgroup'), root }
}

describe('cgroup memory limits', () => {
  it('v2: takes the smallest memory.max up the tree when the leaf says max', () => {
    const src = tree('0::/app.slice/web.service\n', {
      'memory.max': 'max',
      'app.slice/memory.max': '536870912',
      'app.slice/web.service/memory.max': 'max',
      'app.slice/web.service/memory.current': '104857600',
    })
    expect(readCgroupMemory(src)).toEqual({ version: 2, limit: 536870912, usage: 104857600 })
  })

  it('v2: no limit anywhere is no cgroup signal', () => {
    const src = tree('0::/a\n', { 'a/memory.max': 'max', 'a/memory.current': '1000' })
    expect(readCgroupMemory(src)).toBeNull()
  })

  it('v1: the page-rounded 2^63 means unlimited; a real limit is read; a namespaced path falls back to the mount root', () => {
    const unlimited = tree('4:memory:/docker/abc\n0::/\n', {
      'memory/docker/abc/memory.limit_in_bytes': '9223372036854771712',
      'memory/docker/abc/memory.usage_in_bytes': '277000000',
      'memory/memory.limit_in_bytes': '9223372036854771712',
    })
    expect(readCgroupMemory(unlimited)).toBeNull()
    rmSync(dir, { recursive: true, force: true })
    const limited = tree('11:memory,hugetlb:/docker/abc\n', {
      'memory/memory.limit_in_bytes': '9223372036854771712',
      'memory/docker/abc/memory.limit_in_bytes': '268435456',
      'memory/docker/abc/memory.usage_in_bytes': '200000000',
    })
    expect(readCgroupMemory(limited)).toEqual({ version: 1, limit: 268435456, usage: 200000000 })
    rmSync(dir, { recursive: true, force: true })
    const namespaced = tree('4:memory:/kubepods/pod1/c1\n', {
      'memory/memory.limit_in_bytes': '134217728',
      'memory/memory.usage_in_bytes': '50000000',
    })
    expect(readCgroupMemory(namespaced)).toEqual({ version: 1, limit: 134217728, usage: 50000000 })
  })

  it('subtracts the inactive file cache from usage (v2 inactive_file, v1 total_inactive_file)', () => {
    const v2 = tree('0::/a\n', {
      'a/memory.max': '1000000', 'a/memory.current': '900000',
      'a/memory.stat': 'anon 300000\nfile 600000\nactive_file 100000\ninactive_file 500000\n',
    })
    expect(readCgroupMemory(v2)).toEqual({ version: 2, limit: 1000000, usage: 400000 })
    rmSync(dir, { recursive: true, force: true })
    const v1 = tree('4:memory:/x\n', {
      'memory/x/memory.limit_in_bytes': '1000000', 'memory/x/memory.usage_in_bytes': '800000',
      'memory/x/memory.stat': 'cache 500000\ninactive_file 1\ntotal_inactive_file 300000\n',
    })
    expect(readCgroupMemory(v1)).toEqual({ version: 1, limit: 1000000, usage: 500000 })
  })

  it('treats UINT64_MAX (what Node 20 reports for "no limit") as none', () => {
    const src = tree('0::/a\n', { 'a/memory.max': '18446744073709551615', 'a/memory.current': '1000' })
    expect(readCgroupMemory(src)).toBeNull()
  })
})
